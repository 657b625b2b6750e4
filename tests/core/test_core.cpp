// core: dtype/device parsing, the BLAS check, atomic files.
#include <fstream>

#include <toml++/toml.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "support/support.h"

namespace {

TEST(Runtime, ParsesDtypesAndDevices) {
  EXPECT_EQ(ls::core::parse_dtype("fp16"), c10::kHalf);
  EXPECT_EQ(ls::core::parse_dtype("bf16"), c10::kBFloat16);
  EXPECT_EQ(ls::core::parse_dtype("fp32"), c10::kFloat);
  EXPECT_THROW(ls::core::parse_dtype("fp8"), ls::Error);
  EXPECT_TRUE(ls::core::parse_device("cpu").is_cpu());
  EXPECT_THROW(ls::core::parse_device("tpu"), ls::Error);
  if (!torch::cuda::is_available()) {
    EXPECT_THROW(ls::core::parse_device("cuda"), ls::Error);
  }
}

// With the reference BLAS a full-size UNet forward is ~25x slower: scripts/setup must have
// switched libblas.so.3 to OpenBLAS, and this is where a wrong machine shows up.
TEST(Runtime, OptimisedBlasIsLoaded) {
  auto a = torch::randn({64, 64});
  (void)torch::mm(a, a);
  std::string blas = ls::core::loaded_blas();
  ASSERT_FALSE(blas.empty()) << "libtorch loaded no BLAS library";
  EXPECT_FALSE(ls::core::blas_is_reference(blas)) << "reference BLAS in use: " << blas << "; run scripts/setup";
  EXPECT_TRUE(ls::core::blas_is_reference("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"));
  EXPECT_FALSE(ls::core::blas_is_reference("/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"));
}

TEST(AtomicFile, CommitReplacesAndAbortKeepsOld) {
  ls::test::TempDir dir;
  auto target = dir / "out.txt";
  ls::core::write_file_atomic(target, "first");
  {
    ls::core::AtomicFile f(target);
    f.write("second", 6);
    // destroyed without commit: as if the program died mid-write
  }
  EXPECT_EQ(ls::core::read_file(target), "first");
  ls::core::write_file_atomic(target, "third");
  EXPECT_EQ(ls::core::read_file(target), "third");
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
  EXPECT_THROW(ls::core::write_file_atomic(dir / "no/such/dir/x", "x"), ls::Error);
  EXPECT_THROW(ls::core::read_file(dir / "absent"), ls::Error);
}

TEST(Error, CheckFormatsOneLine) {
  try {
    LS_CHECK(1 + 1 == 3, "data.toml: resolution must be a multiple of 64, got ", 1000);
    FAIL();
  } catch (const ls::Error& e) {
    EXPECT_STREQ(e.what(), "data.toml: resolution must be a multiple of 64, got 1000");
  }
}

}  // namespace

namespace {

// FIPS 180-4 examples and a streaming split that crosses block boundaries.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(ls::core::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ls::core::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ls::core::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  EXPECT_EQ(ls::core::sha256_hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  ls::core::Sha256 streamed;
  for (size_t i = 0; i < million.size(); i += 997) streamed.update(million.data() + i, std::min<size_t>(997, million.size() - i));
  EXPECT_EQ(streamed.hex_digest(), ls::core::sha256_hex(million));
}

}  // namespace

namespace {

TEST(Strings, AsciiLowerLeavesUtf8Alone) {
  EXPECT_EQ(ls::core::ascii_lower("AdaFactor_X9"), "adafactor_x9");
  EXPECT_EQ(ls::core::ascii_lower("\xC3\x84rger"), "\xC3\x84rger");  // "Ärger": multi-byte bytes unchanged
}

TEST(Strings, TrimBlanksBothEnds) {
  EXPECT_EQ(ls::core::trim(" \t a b \r\n"), "a b");
  EXPECT_EQ(ls::core::trim(" \t\r\n"), "");
  EXPECT_EQ(ls::core::trim("x"), "x");
}

}  // namespace

namespace {

TEST(Strings, FormatDoubleIsShortestRoundTrip) {
  EXPECT_EQ(ls::core::format_double(7.0), "7");
  EXPECT_EQ(ls::core::format_double(0.8), "0.8");
  EXPECT_EQ(ls::core::format_double(7.5), "7.5");
  for (double v : {0.1, 1.0 / 3.0, 1e-5, 123456.789, -2.5e-300}) {
    double back = 0;
    ASSERT_TRUE(ls::core::parse_double(ls::core::format_double(v), back));
    EXPECT_EQ(back, v);
  }
}

TEST(Strings, ParseNumbersWholeTextOnly) {
  double d = 0;
  int64_t i = 0;
  EXPECT_TRUE(ls::core::parse_double(" 0.75 ", d));
  EXPECT_EQ(d, 0.75);
  EXPECT_TRUE(ls::core::parse_double("+2", d));
  EXPECT_FALSE(ls::core::parse_double("0.75x", d));
  EXPECT_FALSE(ls::core::parse_double("", d));
  EXPECT_TRUE(ls::core::parse_int64("-12", i));
  EXPECT_EQ(i, -12);
  EXPECT_FALSE(ls::core::parse_int64("1.5", i));
  EXPECT_FALSE(ls::core::parse_int64("99999999999999999999", i));
}

}  // namespace

namespace {

TEST(Strings, TomlQuoteEscapes) {
  using ls::core::toml_quote;
  EXPECT_EQ(toml_quote("plain"), "\"plain\"");
  EXPECT_EQ(toml_quote("a\"b\\c\nd\te"), "\"a\\\"b\\\\c\\nd\\te\"");
  EXPECT_EQ(toml_quote(std::string("\x01\x7F", 2)), "\"\\u0001\\u007F\"");
  EXPECT_EQ(toml_quote("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
  const std::string tricky = std::string("q\"\\\b\f\r\x1F end\xC3\xA9", 14);
  const toml::table t = toml::parse("k = " + toml_quote(tricky));
  EXPECT_EQ(t["k"].value<std::string>(), tricky);
}

}  // namespace
