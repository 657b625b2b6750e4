// ZipArchive on the archives torch.save writes (tests/fixtures/torch_pickle): the entry list, data
// offsets and CRCs, the ZIP64 form (every size and offset in ZIP64 fields) reading the same bytes,
// compressed entries refused, and every truncation and corrupted end record an ls::Error.
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/zip_archive.h"
#include "support/support.h"

namespace {

using ls::io::ZipArchive;
using ls::test::error_of;

std::string tz_read(const std::string& name) {
  std::ifstream in(std::string(ls::test::kSourceDir) + "/tests/fixtures/torch_pickle/" + name, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  EXPECT_TRUE(in.good()) << name;
  return bytes.str();
}

TEST(ZipArchive, ListsWhatTorchSaveWrites) {
  const std::string bytes = tz_read("state_dict_fp16.bin");
  const ZipArchive zip(bytes, "state_dict_fp16.bin");
  ASSERT_GE(zip.entries().size(), 5u);
  EXPECT_EQ(zip.entries().front().name, "state_dict_fp16/data.pkl");
  for (const char* name : {"state_dict_fp16/byteorder", "state_dict_fp16/version", "state_dict_fp16/data/0",
                           "state_dict_fp16/data/15", "state_dict_fp16/.data/serialization_id"})
    EXPECT_NE(zip.find(name), nullptr) << name;
  EXPECT_EQ(zip.find("state_dict_fp16/data/16"), nullptr);
  EXPECT_EQ(zip.data(*zip.find("state_dict_fp16/byteorder")), "little");
  EXPECT_EQ(zip.data(*zip.find("state_dict_fp16/version")), "3\n");
  for (const auto& entry : zip.entries()) {
    EXPECT_NO_THROW(zip.verify_crc(entry)) << entry.name;
    // torch.save aligns every record to 64 bytes (torch/serialization.py _get_storage_alignment).
    EXPECT_EQ(entry.offset % 64, 0u) << entry.name;
  }
  EXPECT_EQ(zip.find("state_dict_fp16/data/1")->size, 35u * 2);  // "weight": 5 x 7 fp16
}

TEST(ZipArchive, Zip64FormReadsTheSameBytes) {
  const std::string plain_bytes = tz_read("state_dict_fp16.bin"), zip64_bytes = tz_read("zip64.bin");
  const ZipArchive plain(plain_bytes, "state_dict_fp16.bin"), zip64(zip64_bytes, "zip64.bin");
  ASSERT_EQ(plain.entries().size(), zip64.entries().size());
  for (size_t i = 0; i < plain.entries().size(); ++i) {
    const auto& a = plain.entries()[i];
    const auto& b = zip64.entries()[i];
    EXPECT_EQ(a.name.substr(a.name.find('/')), b.name.substr(b.name.find('/')));
    EXPECT_EQ(plain.data(a), zip64.data(b)) << a.name;
    EXPECT_NO_THROW(zip64.verify_crc(b));
  }
}

TEST(ZipArchive, RefusesCompressedEntries) {
  const std::string bytes = tz_read("compressed.bin");
  EXPECT_NE(error_of([&] { ZipArchive(bytes, "c.bin"); })
                .find("c.bin: zip entry \"compressed/data.pkl\" is compressed (method 8); torch.save stores "
                      "entries uncompressed"),
            std::string::npos);
}

TEST(ZipArchive, EveryTruncationAndBrokenEndRecordIsAnError) {
  const std::string bytes = tz_read("state_dict_fp16.bin");
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string error = error_of([&] { ZipArchive(bytes.substr(0, n), "t.bin"); });
    EXPECT_EQ(error.rfind("t.bin: ", 0), 0u) << n << ": " << error;
  }
  EXPECT_NE(error_of([&] { ZipArchive(bytes.substr(0, bytes.size() / 2), "t.bin"); })
                .find("no zip end-of-central-directory record; the file is truncated"),
            std::string::npos);
  // Each field of the end record pointing elsewhere: refused, never read past.
  const size_t end = bytes.rfind("PK\x05\x06");
  ASSERT_NE(end, std::string::npos);
  for (size_t field = 4; field < 20; ++field) {  // not the comment length: then no record is found
    std::string broken = bytes;
    broken[end + field] = static_cast<char>(broken[end + field] ^ 0x5a);
    const std::string error = error_of([&] { ZipArchive(broken, "b.bin"); });
    EXPECT_EQ(error.rfind("b.bin: ", 0), 0u) << field << ": " << error;
  }
  // The same for the ZIP64 end record's entry count, sizes and offsets.
  const std::string zip64 = tz_read("zip64.bin");
  const size_t rec = zip64.rfind("PK\x06\x06");
  ASSERT_NE(rec, std::string::npos);
  for (size_t field : {16, 20, 24, 32, 40, 48}) {
    std::string broken = zip64;
    broken[rec + field] = static_cast<char>(broken[rec + field] ^ 0x5a);
    EXPECT_NE(error_of([&] { ZipArchive(broken, "z.bin"); }), "") << field;
  }
}

TEST(ZipArchive, Crc32IsZlibs) {
  EXPECT_EQ(ls::io::crc32(""), 0u);
  EXPECT_EQ(ls::io::crc32("123456789"), 0xcbf43926u);  // the standard check value
}

}  // namespace
