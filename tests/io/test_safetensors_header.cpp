// Header parsing and validation on hand-built bytes: every malformed case must throw ls::Error with
// one line naming the file (and tensor) and the expected words; valid variants the Rust crate
// (huggingface/safetensors safetensors/src/tensor.rs) accepts must parse. Also float8 decoding.
#include <cmath>
#include <initializer_list>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/safetensors_header.h"

namespace {

using ls::io::Dtype;

std::string le64(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out;
}

std::string file_bytes(const std::string& json, const std::string& data) {
  return le64(json.size()) + json + data;
}

// One F32 tensor "w" of shape [2] (8 bytes), as most malformed cases start from it.
const std::string kGood = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

std::string error_of(const std::string& bytes) {
  try {
    ls::io::parse_file_bytes(bytes, "model.safetensors");
  } catch (const ls::Error& e) {
    return e.what();
  }
  return "";
}

// Throws, names the file, stays on one line and contains every word given.
void expect_error(const std::string& bytes, std::initializer_list<const char*> words) {
  const std::string message = error_of(bytes);
  ASSERT_FALSE(message.empty()) << "accepted a malformed file";
  EXPECT_EQ(message.rfind("model.safetensors: ", 0), 0u) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find(';'), std::string::npos) << "no advice in: " << message;
  for (const char* word : words) EXPECT_NE(message.find(word), std::string::npos) << message;
}

TEST(SafetensorsHeader, ParsesValidFileInOffsetOrder) {
  const std::string json =
      R"({"b":{"dtype":"I8","shape":[],"data_offsets":[8,9]},)"
      R"("__metadata__":{"format":"pt","note":""},)"
      R"("a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
      R"("e":{"dtype":"F32","shape":[3,0],"data_offsets":[9,9]}})";
  auto header = ls::io::parse_file_bytes(file_bytes(json, std::string(9, '\x01')), "f");
  ASSERT_EQ(header.tensors.size(), 3u);
  EXPECT_EQ(header.tensors[0].name, "a");
  EXPECT_EQ(header.tensors[0].dtype, Dtype::kF16);
  EXPECT_EQ(header.tensors[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(header.tensors[0].numel(), 4);
  EXPECT_EQ(header.tensors[1].name, "b");
  EXPECT_EQ(header.tensors[1].numel(), 1);  // 0-dim
  EXPECT_EQ(header.tensors[1].begin, 8u);
  EXPECT_EQ(header.tensors[2].name, "e");
  EXPECT_EQ(header.tensors[2].numel(), 0);
  EXPECT_EQ(header.metadata.at("format"), "pt");
  EXPECT_EQ(header.metadata.at("note"), "");
}

TEST(SafetensorsHeader, AcceptsPaddingNullMetadataAndEmptyFile) {
  auto padded = ls::io::parse_file_bytes(file_bytes(kGood + "      ", std::string(8, '\0')), "f");
  EXPECT_EQ(padded.tensors.size(), 1u);
  auto null_meta = ls::io::parse_header(R"({"__metadata__":null})", 0, "f");
  EXPECT_TRUE(null_meta.metadata.empty());
  // What the Rust serializer writes for no tensors: "{}" and six spaces.
  auto empty = ls::io::parse_file_bytes(file_bytes("{}      ", ""), "f");
  EXPECT_TRUE(empty.tensors.empty());
}

TEST(SafetensorsHeader, RejectsShortFileAndBadHeaderLength) {
  expect_error("", {"0 bytes", "shorter than the 8-byte", "truncated"});
  expect_error(std::string(5, '\0'), {"5 bytes", "truncated"});
  expect_error(le64(100'000'001) + "{}", {"header length 100000001", "exceeds"});
  expect_error(le64(1ull << 63) + "{}", {"exceeds"});
  expect_error(le64(40) + kGood.substr(0, 20), {"header length 40", "beyond the end", "28-byte"});
}

TEST(SafetensorsHeader, RejectsTruncatedData) {
  expect_error(file_bytes(kGood, std::string(5, '\0')),
               {"'w'", "[0,8]", "outside the 5-byte data section", "truncated"});
  expect_error(file_bytes(kGood, ""), {"'w'", "truncated"});
}

TEST(SafetensorsHeader, RejectsGapsOverlapsAndTrailingBytes) {
  const std::string gap = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                          R"("b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}})";
  expect_error(file_bytes(gap, std::string(5, 'x')), {"[2,3)", "gap before 'b'"});
  const std::string late_start = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})";
  expect_error(file_bytes(late_start, std::string(3, 'x')), {"[0,1)", "gap before 'a'"});
  const std::string overlap = R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})";
  expect_error(file_bytes(overlap, std::string(4, 'x')), {"'b'", "overlaps 'a'"});
  const std::string shared = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                             R"("b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  expect_error(file_bytes(shared, std::string(2, 'x')), {"overlaps"});
  expect_error(file_bytes(kGood, std::string(9, '\0')),
               {"cover 8 bytes", "has 9", "trailing bytes"});
}

TEST(SafetensorsHeader, RejectsWrongByteLengthAndBadOffsets) {
  expect_error(file_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                          std::string(8, '\0')),
               {"'w'", "[3]", "F32", "needs 12 bytes", "span 8", "wrong byte length"});
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", ""),
               {"'w'", "[4,0]", "begin after end"});
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", "x"),
               {"'w'", "data_offsets must be [begin, end]"});
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}})", "x"),
               {"data_offsets must be"});
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[-1,1]}})", "x"),
               {"data_offsets must be"});
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":"0,1"}})", "x"),
               {"data_offsets must be"});
}

TEST(SafetensorsHeader, RejectsBadShapes) {
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":[-2],"data_offsets":[0,0]}})", ""),
               {"'w'", "shape entry -2", "negative shape"});
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}})", ""),
               {"'w'", "not a non-negative integer"});
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":["2"],"data_offsets":[0,0]}})", ""),
               {"not a non-negative integer"});
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":2,"data_offsets":[0,0]}})", ""),
               {"shape is a number, not an array"});
  // 2^32 * 2^32 overflows 64 bits even though a later 0 makes the product 0 (as Rust's try_fold).
  expect_error(
      file_bytes(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", ""),
      {"'w'", "overflows 64 bits"});
  // numel fits but numel * 8 bytes does not.
  expect_error(
      file_bytes(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})", ""),
      {"overflows 64 bits"});
  expect_error(
      file_bytes(R"({"w":{"dtype":"U8","shape":[0,9223372036854775808],"data_offsets":[0,0]}})", ""),
      {"beyond int64"});
}

TEST(SafetensorsHeader, RejectsUnknownDtypeNamingTensorAndDtype) {
  expect_error(file_bytes(R"({"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})", "x"),
               {"tensor 'w'", "unknown dtype 'F4'", "convert"});
  expect_error(file_bytes(R"({"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})",
                          std::string(8, 'x')),
               {"unknown dtype 'f32'"});
  expect_error(file_bytes(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", std::string(8, 'x')),
               {"dtype is a number"});
}

TEST(SafetensorsHeader, RejectsBadJsonAndNonObjects) {
  expect_error(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", std::string(8, 'x')),
               {"not valid JSON"});
  expect_error(file_bytes(kGood + "x", std::string(8, 'x')), {"not valid JSON"});
  expect_error(file_bytes(kGood.substr(0, kGood.size() - 1) + std::string("\0}", 2), std::string(8, 'x')),
               {"not valid JSON"});
  expect_error(file_bytes("[1,2]   ", ""), {"header is a JSON array, not an object"});
  expect_error(file_bytes("\"w\"", ""), {"not an object"});
  expect_error(file_bytes(std::string("{\"\xff\":1}"), ""), {"not valid UTF-8"});
  expect_error(file_bytes(std::string("{\"\xc0\xaf\":1}"), ""), {"not valid UTF-8"});  // overlong
  expect_error(file_bytes(std::string(100, '[') + std::string(100, ']'), ""), {"nests deeper"});
  expect_error(file_bytes(R"({"w":[1,2]})", ""), {"tensor 'w'", "not an object"});
}

TEST(SafetensorsHeader, RejectsBadMetadata) {
  expect_error(file_bytes(R"({"__metadata__":{"epochs":4}})", ""),
               {"metadata value for 'epochs' is a number, not a string"});
  expect_error(file_bytes(R"({"__metadata__":{"a":{"b":"c"}}})", ""), {"'a' is a object"});
  expect_error(file_bytes(R"({"__metadata__":["a"]})", ""), {"not an object of strings"});
}

TEST(SafetensorsHeader, RejectsDuplicateMissingAndExtraFields) {
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                          R"("w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                          "xx"),
               {"key 'w' twice"});
  expect_error(file_bytes(R"({"w":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})", "x"),
               {"'dtype' twice"});
  expect_error(file_bytes(R"({"__metadata__":{"a":"1","a":"2"}})", ""), {"'a' twice"});
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":[1]}})", ""), {"'w'", "lacks"});
  expect_error(file_bytes(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":0}})", "x"),
               {"'w'", "unexpected field 'x'"});
}

TEST(SafetensorsHeader, ErrorKeepsControlCharactersOnOneLine) {
  expect_error(file_bytes("{\"bad\\nname\":{\"dtype\":\"Q9\",\"shape\":[],\"data_offsets\":[0,1]}}", "x"),
               {"'bad\\x0aname'", "unknown dtype 'Q9'"});
}

TEST(SafetensorsHeader, DtypeNamesAndSizes) {
  const std::pair<Dtype, std::pair<const char*, size_t>> table[] = {
      {Dtype::kF64, {"F64", 8}},  {Dtype::kF32, {"F32", 4}},         {Dtype::kF16, {"F16", 2}},
      {Dtype::kBF16, {"BF16", 2}}, {Dtype::kI64, {"I64", 8}},        {Dtype::kI32, {"I32", 4}},
      {Dtype::kI16, {"I16", 2}},  {Dtype::kI8, {"I8", 1}},           {Dtype::kU8, {"U8", 1}},
      {Dtype::kBool, {"BOOL", 1}}, {Dtype::kF8E4M3, {"F8_E4M3", 1}}, {Dtype::kF8E5M2, {"F8_E5M2", 1}},
      {Dtype::kU16, {"U16", 2}},  {Dtype::kU32, {"U32", 4}},         {Dtype::kU64, {"U64", 8}},
  };
  for (const auto& [dtype, expected] : table) {
    EXPECT_EQ(ls::io::dtype_name(dtype), expected.first);
    EXPECT_EQ(ls::io::dtype_size(dtype), expected.second);
    EXPECT_EQ(ls::io::dtype_from_name(expected.first), dtype);
  }
  EXPECT_FALSE(ls::io::dtype_from_name("F8_E8M0").has_value());
}

// float8 by the bit formula: (-1)^s * 2^(e - bias) * (1 + m / 2^mbits), subnormal when e == 0.
double f8_formula(uint8_t bits, int mantissa_bits, int bias) {
  const int m = bits & ((1 << mantissa_bits) - 1);
  const int e = (bits & 0x7F) >> mantissa_bits;
  const double sign = (bits & 0x80) ? -1.0 : 1.0;
  const double fraction = m / std::pow(2.0, mantissa_bits);
  if (e == 0) return sign * std::pow(2.0, 1 - bias) * fraction;
  return sign * std::pow(2.0, e - bias) * (1.0 + fraction);
}

TEST(Float8, E4M3HandValuesAndFormula) {
  using ls::io::f8_e4m3_to_float;
  EXPECT_EQ(f8_e4m3_to_float(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(f8_e4m3_to_float(0x80)));
  EXPECT_EQ(f8_e4m3_to_float(0x01), 0.001953125f);  // smallest subnormal 2^-9
  EXPECT_EQ(f8_e4m3_to_float(0x07), 0.013671875f);  // 7 * 2^-9
  EXPECT_EQ(f8_e4m3_to_float(0x08), 0.015625f);     // smallest normal 2^-6
  EXPECT_EQ(f8_e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(f8_e4m3_to_float(0x3C), 1.5f);
  EXPECT_EQ(f8_e4m3_to_float(0x7E), 448.0f);        // max normal
  EXPECT_EQ(f8_e4m3_to_float(0xFE), -448.0f);
  EXPECT_EQ(f8_e4m3_to_float(0xC0), -2.0f);
  EXPECT_TRUE(std::isnan(f8_e4m3_to_float(0x7F)));
  EXPECT_TRUE(std::isnan(f8_e4m3_to_float(0xFF)));
  EXPECT_EQ(f8_e4m3_to_float(0x78), 256.0f);  // e=15 m=0 is a number in the fn variant, not inf
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7F) == 0x7F) continue;
    EXPECT_EQ(static_cast<double>(f8_e4m3_to_float(b)), f8_formula(b, 3, 7)) << "byte " << b;
  }
}

TEST(Float8, E5M2HandValuesAndFormula) {
  using ls::io::f8_e5m2_to_float;
  EXPECT_EQ(f8_e5m2_to_float(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(f8_e5m2_to_float(0x80)));
  EXPECT_EQ(f8_e5m2_to_float(0x01), 1.52587890625e-05f);  // smallest subnormal 2^-16
  EXPECT_EQ(f8_e5m2_to_float(0x03), 4.57763671875e-05f);  // 3 * 2^-16
  EXPECT_EQ(f8_e5m2_to_float(0x04), 6.103515625e-05f);    // smallest normal 2^-14
  EXPECT_EQ(f8_e5m2_to_float(0x3C), 1.0f);
  EXPECT_EQ(f8_e5m2_to_float(0x7B), 57344.0f);            // max normal
  EXPECT_EQ(f8_e5m2_to_float(0xFB), -57344.0f);
  EXPECT_EQ(f8_e5m2_to_float(0x7C), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f8_e5m2_to_float(0xFC), -std::numeric_limits<float>::infinity());
  for (uint8_t nan : {0x7D, 0x7E, 0x7F, 0xFD, 0xFF}) EXPECT_TRUE(std::isnan(f8_e5m2_to_float(nan)));
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7C) == 0x7C) continue;
    EXPECT_EQ(static_cast<double>(f8_e5m2_to_float(b)), f8_formula(b, 2, 15)) << "byte " << b;
  }
}

TEST(SafetensorsHeader, SerializeMatchesRustLayoutAndParsesBack) {
  // Byte-for-byte what huggingface/safetensors' serializer produces (its tensor.rs tests).
  ls::io::TensorInfo attn{"attn.0", Dtype::kF32, {1, 2, 3}, 0, 24};
  EXPECT_EQ(ls::io::serialize_header({attn}, {}, "f"),
            R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})");
  ls::io::TensorInfo attn0{"attn0", Dtype::kF32, {1, 1, 2, 3}, 0, 24};
  EXPECT_EQ(ls::io::serialize_header({attn0}, {}, "f"),
            R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" + std::string(7, ' '));
  EXPECT_EQ(ls::io::serialize_header({}, {}, "f"), "{}      ");
  EXPECT_EQ(ls::io::serialize_header({}, {{"framework", "pt"}}, "f"),
            R"({"__metadata__":{"framework":"pt"}})" + std::string(5, ' '));

  ls::io::TensorInfo z{"z", Dtype::kBF16, {2}, 0, 4}, a{"a", Dtype::kBool, {}, 4, 5};
  const std::string text = ls::io::serialize_header({z, a}, {{"k", "v\n\"x\""}}, "f");
  EXPECT_EQ(text.size() % 8, 0u);
  EXPECT_EQ(text.find(R"({"__metadata__":{"k":"v\n\"x\""},"z":)"), 0u) << text;
  auto parsed = ls::io::parse_header(text, 5, "f");
  ASSERT_EQ(parsed.tensors.size(), 2u);
  EXPECT_EQ(parsed.tensors[0].name, "z");
  EXPECT_EQ(parsed.tensors[1].dtype, Dtype::kBool);
  EXPECT_EQ(parsed.metadata.at("k"), "v\n\"x\"");
}

TEST(SafetensorsHeader, SerializeRejectsBadNames) {
  ls::io::TensorInfo t{"w", Dtype::kU8, {1}, 0, 1};
  EXPECT_THROW(ls::io::serialize_header({t, t}, {}, "f"), ls::Error);
  ls::io::TensorInfo meta{"__metadata__", Dtype::kU8, {1}, 0, 1};
  EXPECT_THROW(ls::io::serialize_header({meta}, {}, "f"), ls::Error);
  ls::io::TensorInfo bad{"\xff", Dtype::kU8, {1}, 0, 1};
  EXPECT_THROW(ls::io::serialize_header({bad}, {}, "f"), ls::Error);
  EXPECT_THROW(ls::io::serialize_header({}, {{"k", "\xc3"}}, "f"), ls::Error);
}

}  // namespace
