// sample/file_hashes: FIPS 180-2 SHA-256 vectors ("abc", "", one million 'a') through files; the
// addnet hash covers exactly the bytes after the safetensors header; A1111 short hashes (10/12 hex)
// and sshs_model_hash precedence; the JSON cache is used while size+mtime hold (proved by
// rewriting a file behind its back), invalidated when either changes, and rebuilt when corrupt.
#include <chrono>
#include <fstream>

#include <nlohmann/json.hpp>

#include "a1111/file_hashes.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors_header.h"
#include "support/support.h"

namespace file_hashes_test {

namespace fs = std::filesystem;
using ls::a1111::FileHashCache;

const std::string kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string kMillionA = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
const std::string kAbcd = "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589";  // "abcd"

void write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

/// A safetensors file with one U8 tensor holding `data`, laid out by the io header code.
std::string safetensors_bytes(const std::string& data, const std::map<std::string, std::string>& metadata) {
  ls::io::TensorInfo t;
  t.name = "t";
  t.dtype = ls::io::Dtype::kU8;
  t.shape = {static_cast<int64_t>(data.size())};
  std::vector<ls::io::TensorInfo> infos = {t};
  ls::io::lay_out(infos);
  const std::string header = ls::io::serialize_header(infos, metadata, "test");
  return ls::io::header_length_bytes(header.size()) + header + data;
}

TEST(FileHashes, KnownVectorsThroughFiles) {
  ls::test::TempDir dir;
  write(dir / "abc", "abc");
  write(dir / "empty", "");
  write(dir / "million", std::string(1000000, 'a'));
  EXPECT_EQ(ls::a1111::file_sha256(dir / "abc"), kAbc);
  EXPECT_EQ(ls::a1111::file_sha256(dir / "empty"), kEmpty);
  EXPECT_EQ(ls::a1111::file_sha256(dir / "million"), kMillionA);
  FileHashCache cache("");
  EXPECT_EQ(ls::a1111::model_hash(dir / "abc", cache), "ba7816bf8f");  // AutoV2: 10 hex
  EXPECT_EQ(ls::a1111::lora_hash(dir / "abc", cache), "ba7816bf8f01");  // not safetensors: whole file
}

TEST(FileHashes, AddnetHashCoversTheDataSection) {
  ls::test::TempDir dir;
  write(dir / "plain.safetensors", safetensors_bytes("abc", {{"ss_network_dim", "8"}}));
  write(dir / "tagged.SafeTensors", safetensors_bytes("abc", {{"sshs_model_hash", "fedcba9876543210" + kAbc}}));
  write(dir / "million.safetensors", safetensors_bytes(std::string(1000000, 'a'), {}));
  EXPECT_EQ(ls::a1111::safetensors_addnet_sha256(dir / "plain.safetensors"), kAbc);
  EXPECT_EQ(ls::a1111::safetensors_addnet_sha256(dir / "million.safetensors"), kMillionA);
  FileHashCache cache("");
  EXPECT_EQ(ls::a1111::lora_hash(dir / "plain.safetensors", cache), kAbc.substr(0, 12));
  EXPECT_EQ(ls::a1111::lora_hash(dir / "tagged.SafeTensors", cache), "fedcba987654");  // metadata wins
  EXPECT_EQ(cache.files_hashed(), 1);  // the tagged file was never hashed
  // Broken files name themselves.
  write(dir / "short.safetensors", "abc");
  write(dir / "cut.safetensors", safetensors_bytes("abc", {}).substr(0, 20));
  std::string err = ls::test::error_of([&] { ls::a1111::lora_hash(dir / "short.safetensors", cache); });
  EXPECT_NE(err.find("short.safetensors: shorter than a safetensors header"), std::string::npos) << err;
  err = ls::test::error_of([&] { ls::a1111::lora_hash(dir / "cut.safetensors", cache); });
  EXPECT_NE(err.find("cut.safetensors: safetensors header length"), std::string::npos) << err;
  err = ls::test::error_of([&] { ls::a1111::file_sha256(dir / "missing.bin"); });
  EXPECT_NE(err.find("missing.bin: cannot open"), std::string::npos) << err;
}

TEST(FileHashes, CacheIsKeyedBySizeAndMtime) {
  ls::test::TempDir dir;
  const fs::path file = dir / "model.bin", cache_dir = dir / "cache";
  write(file, "abc");
  const auto mtime = fs::last_write_time(file);
  {
    FileHashCache cache(cache_dir);
    EXPECT_EQ(cache.sha256(file), kAbc);
    EXPECT_EQ(cache.sha256(file), kAbc);
    EXPECT_EQ(cache.files_hashed(), 1);
  }
  // The JSON holds path, size, mtime and hash.
  const nlohmann::json j = nlohmann::json::parse(ls::core::read_file(cache_dir / "file_hashes.json"));
  const auto& e = j.at("files").at(fs::absolute(file).lexically_normal().string());
  EXPECT_EQ(e.at("size").get<uint64_t>(), 3u);
  EXPECT_EQ(e.at("sha256").get<std::string>(), kAbc);
  {
    // Same size, mtime put back: the cached (now stale) hash comes back without reading the file.
    write(file, "xyz");
    fs::last_write_time(file, mtime);
    FileHashCache cache(cache_dir);
    EXPECT_EQ(cache.sha256(file), kAbc);
    EXPECT_EQ(cache.files_hashed(), 0);
  }
  {
    write(file, "abcd");  // size changes
    fs::last_write_time(file, mtime);
    FileHashCache cache(cache_dir);
    EXPECT_EQ(cache.sha256(file), kAbcd);
    EXPECT_EQ(cache.files_hashed(), 1);
  }
  {
    write(file, "abc\n");  // same size as "abcd", newer mtime
    fs::last_write_time(file, mtime + std::chrono::seconds(1));
    FileHashCache cache(cache_dir);
    EXPECT_EQ(cache.sha256(file), "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb");  // "abc\n"
    EXPECT_EQ(cache.files_hashed(), 1);
    // Both kinds of hash live in one entry.
    write(dir / "l.safetensors", safetensors_bytes("abc", {}));
    EXPECT_EQ(cache.addnet_sha256(dir / "l.safetensors"), kAbc);
    EXPECT_EQ(cache.sha256(dir / "l.safetensors"), ls::a1111::file_sha256(dir / "l.safetensors"));
    EXPECT_EQ(cache.files_hashed(), 3);
  }
  FileHashCache again(cache_dir);
  EXPECT_EQ(again.addnet_sha256(dir / "l.safetensors"), kAbc);
  EXPECT_EQ(again.sha256(file), "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb");
  EXPECT_EQ(again.files_hashed(), 0);
}

TEST(FileHashes, CorruptCacheIsRebuilt) {
  ls::test::TempDir dir;
  const fs::path file = dir / "a.bin", cache_dir = dir / "cache";
  write(file, "abc");
  fs::create_directories(cache_dir);
  for (const std::string& junk : {std::string("{not json"), std::string("[]"),
                                  std::string("{\"format\": 1, \"files\": {\"x\": {\"size\": \"big\"}}}"),
                                  std::string("{\"format\": 99, \"files\": {}}")}) {
    write(cache_dir / "file_hashes.json", junk);
    FileHashCache cache(cache_dir);
    EXPECT_EQ(cache.sha256(file), kAbc) << junk;
    EXPECT_EQ(cache.files_hashed(), 1) << junk;
    const auto j = nlohmann::json::parse(ls::core::read_file(cache_dir / "file_hashes.json"));
    EXPECT_EQ(j.at("format").get<int>(), 1);
    EXPECT_EQ(j.at("files").size(), 1u) << junk;
  }
}

}  // namespace file_hashes_test
