// SafetensorsReader / save_safetensors: exact round trips of every torch dtype, float8 and
// unsigned decoding from hand-built files, the byte layout the Python/Rust writers produce,
// atomic writes under failure, truncation at open, and release() dropping resident pages.
#include <sys/resource.h>

#include <csignal>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/safetensors.h"
#include "core/atomic_file.h"
#include "support/support.h"

namespace {

namespace fs = std::filesystem;
using ls::io::Dtype;
using ls::io::SafetensorsReader;
using ls::test::TempDir;

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A file from explicit tensor infos and raw data, for dtypes torch cannot write.
void write_raw(const fs::path& path, const std::vector<ls::io::TensorInfo>& infos,
               const std::string& data, const std::string& pad = "") {
  std::string header = ls::io::serialize_header(infos, {}, "test");
  while (!header.empty() && header.back() == ' ') header.pop_back();
  header += pad;
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>(header.size() >> (8 * i));
  write_bytes(path, length + header + data);
}

using ls::test::error_of;

std::vector<std::pair<std::string, torch::Tensor>> every_dtype() {
  torch::manual_seed(0);
  return {
      {"f64", torch::randn({3, 4}, torch::kDouble)},
      {"f32", torch::randn({2, 3, 4})},
      {"f16", torch::randn({5}).to(torch::kHalf)},
      {"bf16", torch::randn({4, 2}).to(torch::kBFloat16)},
      {"i64", torch::tensor({int64_t(1) << 40, int64_t(-7), int64_t(0)})},
      {"i32", torch::tensor({-2147483647 - 1, 5, 2147483647})},
      {"i16", torch::tensor({-32768, 1, 32767}, torch::kShort)},
      {"i8", torch::tensor({-128, 0, 127}, torch::kChar)},
      {"u8", torch::tensor({0, 128, 255}, torch::kByte)},
      {"bool", torch::tensor({true, false, true, true})},
      {"scalar", torch::tensor(3.25)},
      {"scalar_i64", torch::tensor(int64_t(-9))},
      {"empty", torch::empty({0}, torch::kHalf)},
      {"empty2d", torch::empty({3, 0}, torch::kFloat)},
  };
}

TEST(Safetensors, RoundTripsEveryTorchDtype) {
  TempDir dir;
  const auto tensors = every_dtype();
  ls::io::save_safetensors(dir / "all.safetensors", tensors);
  SafetensorsReader reader(dir / "all.safetensors");
  ASSERT_EQ(reader.tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, expected] = tensors[i];
    EXPECT_EQ(reader.tensors()[i].name, name);  // laid out in the order given
    ASSERT_TRUE(reader.contains(name));
    EXPECT_EQ(reader.find(name)->dtype, ls::io::dtype_from_torch(expected.scalar_type()));
    torch::Tensor got = reader.load(name);
    EXPECT_EQ(got.scalar_type(), expected.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), expected.sizes()) << name;
    EXPECT_TRUE(torch::equal(got, expected)) << name;
  }
  EXPECT_EQ(reader.find("missing"), nullptr);
  EXPECT_TRUE(reader.metadata().empty());
}

TEST(Safetensors, MetadataRoundTrip) {
  TempDir dir;
  const std::map<std::string, std::string> metadata = {
      {"ss_network_dim", "16"}, {"ss_tag_frequency", R"({"a": {"b c": 2}})"},
      {"unicode", "caf\xc3\xa9 \xe6\x97\xa5"}, {"empty", ""}, {"newline", "a\nb\t\"q\""}};
  ls::io::save_safetensors(dir / "m.safetensors", {{"w", torch::ones({2})}}, metadata);
  SafetensorsReader reader(dir / "m.safetensors");
  EXPECT_EQ(reader.metadata(), metadata);
}

TEST(Safetensors, DecodesFloat8FromHandBuiltBytes) {
  TempDir dir;
  std::string all(256, '\0');
  for (int b = 0; b < 256; ++b) all[b] = static_cast<char>(b);
  write_raw(dir / "f8.safetensors",
            {{"e4m3", Dtype::kF8E4M3, {16, 16}, 0, 256}, {"e5m2", Dtype::kF8E5M2, {256}, 256, 512}},
            all + all);
  SafetensorsReader reader(dir / "f8.safetensors");
  torch::Tensor e4 = reader.load("e4m3").flatten(), e5 = reader.load("e5m2");
  ASSERT_EQ(e4.scalar_type(), torch::kFloat);
  auto a = e4.accessor<float, 1>();
  auto b = e5.accessor<float, 1>();
  EXPECT_EQ(a[0x00], 0.0f);
  EXPECT_TRUE(std::signbit(a[0x80]) && a[0x80] == 0.0f);
  EXPECT_EQ(a[0x01], std::ldexp(1.0f, -9));    // subnormals: m * 2^-9
  EXPECT_EQ(a[0x05], 5 * std::ldexp(1.0f, -9));
  EXPECT_EQ(a[0x08], std::ldexp(1.0f, -6));    // smallest normal
  EXPECT_EQ(a[0x7E], 448.0f);
  EXPECT_EQ(a[0xFE], -448.0f);
  EXPECT_EQ(a[0xB8], -1.0f);
  EXPECT_TRUE(std::isnan(a[0x7F]) && std::isnan(a[0xFF]));
  EXPECT_EQ(b[0x01], std::ldexp(1.0f, -16));
  EXPECT_EQ(b[0x02], std::ldexp(1.0f, -15));
  EXPECT_EQ(b[0x04], std::ldexp(1.0f, -14));
  EXPECT_EQ(b[0x7B], 57344.0f);
  EXPECT_EQ(b[0xFB], -57344.0f);
  EXPECT_EQ(b[0xBD], -1.25f);
  EXPECT_TRUE(std::isinf(b[0x7C]) && b[0x7C] > 0);
  EXPECT_TRUE(std::isinf(b[0xFC]) && b[0xFC] < 0);
  EXPECT_TRUE(std::isnan(b[0x7D]) && std::isnan(b[0xFE]));
  // Converted loads go through the same decoding.
  torch::Tensor half = reader.load("e4m3", torch::kHalf, torch::kCPU).flatten();
  EXPECT_EQ(half.scalar_type(), torch::kHalf);
  EXPECT_EQ(half[0x7E].item<float>(), 448.0f);
  EXPECT_EQ(half[0x01].item<float>(), std::ldexp(1.0f, -9));
}

TEST(Safetensors, WidensUnsignedAndNormalisesBool) {
  TempDir dir;
  std::string data;
  data += std::string("\x01\x00\xff\xff", 4);                  // U16: 1, 65535
  data += std::string("\xff\xff\xff\xff\x02\x00\x00\x00", 8);  // U32: 4294967295, 2
  data += std::string("\x00\x01\x02", 3);                      // BOOL: 0, 1, 2
  data += std::string(8, '\x01');                              // U64
  write_raw(dir / "u.safetensors",
            {{"u16", Dtype::kU16, {2}, 0, 4}, {"u32", Dtype::kU32, {2}, 4, 12},
             {"b", Dtype::kBool, {3}, 12, 15}, {"u64", Dtype::kU64, {1}, 15, 23}},
            data);
  SafetensorsReader reader(dir / "u.safetensors");
  torch::Tensor u16 = reader.load("u16"), u32 = reader.load("u32", torch::kHalf, torch::kCPU);
  EXPECT_EQ(u16.scalar_type(), torch::kInt);
  EXPECT_TRUE(torch::equal(u16, torch::tensor({1, 65535}, torch::kInt)));
  EXPECT_EQ(u32.scalar_type(), torch::kLong);  // integers keep their (widened) dtype
  EXPECT_TRUE(torch::equal(u32, torch::tensor({int64_t(4294967295), int64_t(2)})));
  torch::Tensor flags = reader.load("b");
  EXPECT_TRUE(torch::equal(flags, torch::tensor({false, true, true})));
  EXPECT_EQ(flags.to(torch::kByte).sum().item<int64_t>(), 2);  // stored 2 becomes true == 1
  const std::string message = error_of([&] { reader.load("u64"); });
  EXPECT_NE(message.find("U64"), std::string::npos) << message;
}

TEST(Safetensors, FloatDtypeConversionOnSaveAndLoad) {
  TempDir dir;
  torch::manual_seed(1);
  torch::Tensor w = torch::randn({4, 3}), d = torch::randn({2}, torch::kDouble);
  torch::Tensor steps = torch::tensor({int64_t(10), int64_t(20)});
  ls::io::save_safetensors(dir / "h.safetensors", {{"w", w}, {"d", d}, {"steps", steps}}, {},
                           torch::kHalf);
  SafetensorsReader reader(dir / "h.safetensors");
  EXPECT_EQ(reader.find("w")->dtype, Dtype::kF16);
  EXPECT_EQ(reader.find("d")->dtype, Dtype::kF16);
  EXPECT_EQ(reader.find("steps")->dtype, Dtype::kI64);
  EXPECT_TRUE(torch::equal(reader.load("w"), w.to(torch::kHalf)));
  EXPECT_TRUE(torch::equal(reader.load("d"), d.to(torch::kHalf)));
  // fp16 -> fp32 on load is exact; integer tensors ignore the requested dtype.
  torch::Tensor w32 = reader.load("w", torch::kFloat, torch::kCPU);
  EXPECT_EQ(w32.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(w32, w.to(torch::kHalf).to(torch::kFloat)));
  EXPECT_TRUE(torch::equal(reader.load("steps", torch::kFloat, torch::kCPU), steps));
  // bf16 output, and a non-contiguous input written as its logical (C-order) values.
  torch::Tensor t = torch::randn({3, 5}).t();
  ls::io::save_safetensors(dir / "b.safetensors", {{"t", t}}, {}, torch::kBFloat16);
  SafetensorsReader bf(dir / "b.safetensors");
  EXPECT_TRUE(torch::equal(bf.load("t"), t.to(torch::kBFloat16)));
  EXPECT_THROW(ls::io::save_safetensors(dir / "x.safetensors", {{"t", t}}, {}, torch::kInt),
               ls::Error);
}

TEST(Safetensors, LoadedTensorsOwnTheirMemory) {
  TempDir dir;
  torch::Tensor w = torch::arange(6, torch::kFloat);
  ls::io::save_safetensors(dir / "o.safetensors", {{"w", w}});
  torch::Tensor same, converted;
  {
    SafetensorsReader reader(dir / "o.safetensors");
    same = reader.load("w", torch::kFloat, torch::kCPU);  // same dtype: still a copy
    converted = reader.load("w", torch::kDouble, torch::kCPU);
  }
  same.add_(1);  // would crash on the (now unmapped, read-only) file pages
  EXPECT_TRUE(torch::equal(same, w + 1));
  EXPECT_TRUE(torch::equal(converted, w.to(torch::kDouble)));
}

TEST(Safetensors, HeaderLayoutBytes) {
  TempDir dir;
  ls::io::save_safetensors(dir / "l.safetensors",
                           {{"z", torch::tensor({1.0f, -2.0f})}, {"a", torch::tensor(int8_t(-1))}},
                           {{"format", "pt"}});
  const std::string bytes = ls::core::read_file(dir / "l.safetensors");
  const std::string json =
      R"({"__metadata__":{"format":"pt"},"z":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("a":{"dtype":"I8","shape":[],"data_offsets":[8,9]}})";
  const size_t padded = (json.size() + 7) / 8 * 8;
  ASSERT_EQ(bytes.size(), 8 + padded + 9);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n, padded);  // little-endian length of the padded header
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.substr(8, json.size()), json);
  EXPECT_EQ(bytes.substr(8 + json.size(), padded - json.size()),
            std::string(padded - json.size(), ' '));
  // 1.0f, -2.0f little-endian, then int8 -1.
  EXPECT_EQ(bytes.substr(8 + padded), std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0\xff", 9));
  SafetensorsReader reader(dir / "l.safetensors");
  EXPECT_EQ(reader.data_bytes(), bytes.substr(8 + padded));
  EXPECT_EQ(reader.tensor_bytes(*reader.find("a")), "\xff");
}

TEST(Safetensors, ReadsUnalignedDataSection) {
  // Header length 55 (unpadded): the data section starts at byte 63, so float32 data is misaligned.
  TempDir dir;
  const float values[3] = {1.5f, -3.0f, 1e-3f};
  write_raw(dir / "u.safetensors", {{"w", Dtype::kF32, {3}, 0, 12}},
            std::string(reinterpret_cast<const char*>(values), 12), "");
  ASSERT_EQ(ls::core::read_file(dir / "u.safetensors")[0], 55);
  SafetensorsReader reader(dir / "u.safetensors");
  torch::Tensor expected = torch::tensor({1.5f, -3.0f, 1e-3f});
  EXPECT_TRUE(torch::equal(reader.load("w"), expected));
  EXPECT_TRUE(torch::equal(reader.load("w", torch::kFloat, torch::kCPU), expected));
  EXPECT_TRUE(torch::equal(reader.load("w", torch::kDouble, torch::kCPU), expected.to(torch::kDouble)));
}

TEST(Safetensors, ErrorsNameFileAndKey) {
  TempDir dir;
  const fs::path path = dir / "e.safetensors";
  ls::io::save_safetensors(path, {{"w", torch::ones({2})}});
  SafetensorsReader reader(path);
  const std::string message = error_of([&] { reader.load("unet.missing"); });
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("'unet.missing'"), std::string::npos) << message;
  EXPECT_THROW(reader.release("nope"), ls::Error);
  EXPECT_NE(error_of([&] { SafetensorsReader r(dir / "absent.safetensors"); }).find("cannot open"),
            std::string::npos);
  EXPECT_NE(error_of([&] { SafetensorsReader r(dir.path()); }).find("not a regular file"),
            std::string::npos);
  write_bytes(dir / "empty.safetensors", "");
  EXPECT_NE(error_of([&] { SafetensorsReader r(dir / "empty.safetensors"); }).find("0 bytes"),
            std::string::npos);
  EXPECT_THROW(ls::io::dtype_from_torch(torch::kComplexFloat), ls::Error);
}

TEST(Safetensors, TruncatedFileFailsAtOpen) {
  TempDir dir;
  const fs::path path = dir / "t.safetensors";
  ls::io::save_safetensors(path, {{"a", torch::ones({4})}, {"b", torch::ones({8})}});
  fs::resize_file(path, fs::file_size(path) - 1);
  const std::string message = error_of([&] { SafetensorsReader r(path); });
  EXPECT_NE(message.find(path.string() + ": tensor 'b'"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  fs::resize_file(path, 20);  // cut inside the header
  EXPECT_NE(error_of([&] { SafetensorsReader r(path); }).find("beyond the end"), std::string::npos);
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Safetensors, AtomicWriteLeavesNoTempFile) {
  TempDir dir;
  ls::io::save_safetensors(dir / "a.safetensors", {{"w", torch::ones({3})}});
  ls::io::save_safetensors(dir / "a.safetensors", {{"w", torch::zeros({5})}});  // overwrite
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"a.safetensors"});
  EXPECT_TRUE(torch::equal(SafetensorsReader(dir / "a.safetensors").load("w"), torch::zeros({5})));
}

TEST(Safetensors, FailedWriteKeepsOldFile) {
  TempDir dir;
  const fs::path path = dir / "keep.safetensors";
  ls::io::save_safetensors(path, {{"w", torch::arange(4, torch::kFloat)}});
  const std::string before = ls::core::read_file(path);

  // Errors found while planning: nothing is written.
  EXPECT_THROW(ls::io::save_safetensors(path, {{"w", torch::ones({1})}, {"w", torch::ones({1})}}),
               ls::Error);
  EXPECT_THROW(ls::io::save_safetensors(path, {{"c", torch::ones({1}, torch::kComplexFloat)}}),
               ls::Error);
  // A write failing half-way (the disk "fills" at 64 KiB through RLIMIT_FSIZE).
  struct rlimit old_limit {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message = error_of([&] {
    ls::io::save_safetensors(path, {{"big", torch::ones({1 << 20})}, {"w", torch::ones({2})}});
  });
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_EQ(ls::core::read_file(path), before);
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"keep.safetensors"});
}

// Resident size of the mapping containing `address`, from /proc/self/smaps, in kB.
int64_t mapping_rss_kb(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const auto target = reinterpret_cast<uintptr_t>(address);
  while (std::getline(smaps, line)) {
    unsigned long long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx ", &lo, &hi) == 2 && line.find(':') > line.find('-')) {
      inside = lo <= target && target < hi;
    } else if (inside && line.rfind("Rss:", 0) == 0) {
      return std::stoll(line.substr(4));
    }
  }
  return -1;
}

TEST(Safetensors, ReleaseDropsPagesAndLaterLoadsStillWork) {
  TempDir dir;
  const fs::path path = dir / "r.safetensors";
  torch::manual_seed(2);
  torch::Tensor big = torch::randn({4 << 20});  // 16 MiB
  torch::Tensor small = torch::randn({7});
  ls::io::save_safetensors(path, {{"small", small}, {"big", big}});
  SafetensorsReader reader(path);
  torch::Tensor first = reader.load("big", torch::kFloat, torch::kCPU);
  const int64_t loaded_kb = mapping_rss_kb(reader.data_bytes().data());
  reader.release("big");
  const int64_t released_kb = mapping_rss_kb(reader.data_bytes().data());
  EXPECT_GE(loaded_kb, 15 * 1024) << "the load should have touched the whole 16 MiB tensor";
  EXPECT_LE(released_kb, 256) << "release() should drop the tensor's pages";
  reader.release("small");
  EXPECT_TRUE(torch::equal(reader.load("big"), big));
  EXPECT_TRUE(torch::equal(reader.load("small"), small));
  EXPECT_TRUE(torch::equal(first, big));
}

TEST(Safetensors, ReaderMoves) {
  TempDir dir;
  ls::io::save_safetensors(dir / "m.safetensors", {{"w", torch::ones({2})}});
  SafetensorsReader a(dir / "m.safetensors");
  SafetensorsReader b(std::move(a));
  EXPECT_TRUE(torch::equal(b.load("w"), torch::ones({2})));
  SafetensorsReader c(dir / "m.safetensors");
  c = std::move(b);
  EXPECT_EQ(c.path(), dir / "m.safetensors");
  EXPECT_TRUE(torch::equal(c.load("w"), torch::ones({2})));
}

}  // namespace
