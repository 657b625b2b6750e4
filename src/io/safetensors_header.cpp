// Safetensors header parsing and validation, torch-free (the fuzz target links only this).
// Rules follow huggingface/safetensors safetensors/src/tensor.rs (read_metadata, validate):
// header length <= 100 MB and inside the file, UTF-8 JSON object, offsets contiguous from 0 to
// the end of the data section, byte length == numel * dtype size with overflow checks.
#include "io/safetensors_header.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/utf8.h"

namespace ls::io {
namespace {

using nlohmann::json;

constexpr const char* kCorruptHint = "the file is truncated or not a safetensors file; re-download or re-save it";
constexpr const char* kDamagedHint = "the header contradicts itself (damaged file or broken writer); re-download or re-save it";
constexpr const char* kMetadataKey = "__metadata__";
constexpr size_t kMaxJsonDepth = 64;  // real headers nest 3 deep; deeper is garbage

struct DtypeEntry {
  Dtype dtype;
  const char* name;
  size_t size;
  bool floating;
};

constexpr DtypeEntry kDtypes[] = {
    {Dtype::kF64, "F64", 8, true},        {Dtype::kF32, "F32", 4, true},
    {Dtype::kF16, "F16", 2, true},        {Dtype::kBF16, "BF16", 2, true},
    {Dtype::kI64, "I64", 8, false},       {Dtype::kI32, "I32", 4, false},
    {Dtype::kI16, "I16", 2, false},       {Dtype::kI8, "I8", 1, false},
    {Dtype::kU8, "U8", 1, false},         {Dtype::kBool, "BOOL", 1, false},
    {Dtype::kF8E4M3, "F8_E4M3", 1, true}, {Dtype::kF8E5M2, "F8_E5M2", 1, true},
    {Dtype::kU16, "U16", 2, false},       {Dtype::kU32, "U32", 4, false},
    {Dtype::kU64, "U64", 8, false},
};

const DtypeEntry& entry(Dtype dtype) {
  for (const auto& e : kDtypes)
    if (e.dtype == dtype) return e;
  LS_FAIL("internal error: Dtype ", static_cast<int>(dtype), " has no table entry");
}

// Names come from untrusted files: keep messages on one line and of bounded length.
std::string printable(std::string_view text) {
  constexpr size_t kMax = 120;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMax) out += "...";
  return out + "'";
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

const char* json_kind(const json& value) { return value.type_name(); }

// First pass over the text: syntax, duplicate keys (nlohmann's DOM keeps the last silently) and
// nesting depth, without building anything.
class HeaderScan : public nlohmann::json_sax<json> {
 public:
  std::string error;  // empty when the text is acceptable

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return push(true); }
  bool start_array(std::size_t) override { return push(false); }
  bool end_object() override { return pop(); }
  bool end_array() override { return pop(); }
  bool key(string_t& name) override {
    if (scopes_.back().keys.insert(name).second) return true;
    error = "header has the key " + printable(name) + " twice";
    return false;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    error = "header is not valid JSON (syntax error at byte " + std::to_string(position) + ")";
    return false;
  }

 private:
  struct Scope {
    bool object;
    std::unordered_set<std::string> keys;
  };
  bool push(bool object) {
    if (scopes_.size() >= kMaxJsonDepth) {
      error = "header JSON nests deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    scopes_.push_back({object, {}});
    return true;
  }
  bool pop() {
    scopes_.pop_back();
    return true;
  }
  std::vector<Scope> scopes_;
};

// A non-negative integer that fits int64 (shape entries and offsets).
bool read_count(const json& value, uint64_t* out) {
  if (value.is_number_unsigned()) {
    *out = value.get<uint64_t>();
    return true;
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(value.get<int64_t>());
    return true;
  }
  return false;
}

void read_metadata(const json& value, const std::string& label, Header* header) {
  if (value.is_null()) return;  // serde reads an Option: null means none
  LS_CHECK(value.is_object(), label, ": \"__metadata__\" is a ", json_kind(value),
           ", not an object of strings; ", kCorruptHint);
  for (const auto& [key, item] : value.items()) {
    LS_CHECK(item.is_string(), label, ": metadata value for ", printable(key), " is a ",
             json_kind(item), ", not a string; re-save the file with string metadata values");
    header->metadata.emplace(key, item.get<std::string>());
  }
}

TensorInfo read_tensor(const std::string& name, const json& value, const std::string& label) {
  const std::string where = label + ": tensor " + printable(name);
  LS_CHECK(value.is_object(), where, " is described by a ", json_kind(value),
           ", not an object; ", kCorruptHint);
  for (const auto& [key, item] : value.items()) {
    LS_CHECK(key == "dtype" || key == "shape" || key == "data_offsets", where,
             " has an unexpected field ", printable(key),
             " (only dtype, shape, data_offsets are allowed); ", kDamagedHint);
  }
  LS_CHECK(value.contains("dtype") && value.contains("shape") && value.contains("data_offsets"),
           where, " lacks one of dtype, shape, data_offsets; ", kDamagedHint);

  TensorInfo info;
  info.name = name;
  const json& dtype = value["dtype"];
  LS_CHECK(dtype.is_string(), where, ": dtype is a ", json_kind(dtype), ", not a string; ",
           kCorruptHint);
  auto parsed = dtype_from_name(dtype.get_ref<const std::string&>());
  LS_CHECK(parsed.has_value(), where, " has unknown dtype ",
           printable(dtype.get_ref<const std::string&>()),
           "; lorastudio reads F64/F32/F16/BF16/F8_E4M3/F8_E5M2/I64/I32/I16/I8/U64/U32/U16/U8/BOOL, "
           "convert the file to one of these");
  info.dtype = *parsed;

  const json& shape = value["shape"];
  LS_CHECK(shape.is_array(), where, ": shape is a ", json_kind(shape), ", not an array; ",
           kCorruptHint);
  uint64_t numel = 1;
  bool overflow = false;
  for (const json& dim : shape) {
    uint64_t d = 0;
    LS_CHECK(read_count(dim, &d), where, " has shape entry ", dim.dump().substr(0, 40),
             " which is not a non-negative integer (negative shape); ", kDamagedHint);
    LS_CHECK(d <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where,
             " has shape entry ", d, " beyond int64; ", kDamagedHint);
    // Checked in order, as Rust's try_fold(checked_mul): a later 0 does not excuse an overflow.
    if (!overflow && d != 0 && numel > std::numeric_limits<uint64_t>::max() / d) overflow = true;
    if (!overflow) numel *= d;
    info.shape.push_back(static_cast<int64_t>(d));
  }
  const uint64_t elem = dtype_size(info.dtype);
  LS_CHECK(!overflow && numel <= std::numeric_limits<uint64_t>::max() / elem, where, " has shape ",
           shape_string(info.shape), " whose byte size overflows 64 bits; ", kDamagedHint);

  const json& offsets = value["data_offsets"];
  uint64_t begin = 0, end = 0;
  LS_CHECK(offsets.is_array() && offsets.size() == 2 && read_count(offsets[0], &begin) &&
               read_count(offsets[1], &end),
           where, ": data_offsets must be [begin, end] with two non-negative integers, got ",
           offsets.dump().substr(0, 80), "; ", kCorruptHint);
  LS_CHECK(begin <= end, where, " has data_offsets [", begin, ",", end,
           "] with begin after end; ", kDamagedHint);
  info.begin = begin;
  info.end = end;
  LS_CHECK(end - begin == numel * elem, where, ": shape ", shape_string(info.shape), " of ",
           dtype_name(info.dtype), " needs ", numel * elem, " bytes but data_offsets [", begin,
           ",", end, "] span ", end - begin, " (wrong byte length); ", kDamagedHint);
  return info;
}

// Offsets sorted must tile [0, data_size) exactly (Rust: InvalidOffset, MetadataIncompleteBuffer).
void check_layout(std::vector<TensorInfo>& tensors, uint64_t data_size, const std::string& label) {
  for (const auto& t : tensors) {
    LS_CHECK(t.end <= data_size, label, ": tensor ", printable(t.name), " has data_offsets [",
             t.begin, ",", t.end, "] outside the ", data_size,
             "-byte data section; the file is truncated or damaged; re-download or re-save it");
  }
  std::stable_sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const auto& t : tensors) {
    LS_CHECK(t.begin <= covered, label, ": data bytes [", covered, ",", t.begin,
             ") belong to no tensor (gap before ", printable(t.name), "); ", kDamagedHint);
    LS_CHECK(t.begin == covered, label, ": tensor ", printable(t.name), " at [", t.begin, ",",
             t.end, ") overlaps ", printable(previous ? previous->name : ""), " which ends at ",
             covered, "; ", kDamagedHint);
    covered = t.end;
    previous = &t;
  }
  LS_CHECK(covered == data_size, label, ": tensors cover ", covered, " bytes but the data section has ",
           data_size, " (trailing bytes after the last tensor); ", kDamagedHint);
}

}  // namespace

std::string dtype_name(Dtype dtype) { return entry(dtype).name; }
size_t dtype_size(Dtype dtype) { return entry(dtype).size; }
bool dtype_is_floating(Dtype dtype) { return entry(dtype).floating; }

std::optional<Dtype> dtype_from_name(std::string_view name) {
  for (const auto& e : kDtypes)
    if (name == e.name) return e.dtype;
  return std::nullopt;
}

float f8_e4m3_to_float(uint8_t bits) {
  const int exponent = (bits >> 3) & 0xF, mantissa = bits & 0x7;
  const float sign = (bits & 0x80) ? -1.0f : 1.0f;
  if (exponent == 0xF && mantissa == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -9);  // m/8 * 2^-6
  return sign * std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);     // (1+m/8) 2^(e-7)
}

float f8_e5m2_to_float(uint8_t bits) {
  const int exponent = (bits >> 2) & 0x1F, mantissa = bits & 0x3;
  const float sign = (bits & 0x80) ? -1.0f : 1.0f;
  if (exponent == 0x1F)
    return mantissa ? std::numeric_limits<float>::quiet_NaN()
                    : sign * std::numeric_limits<float>::infinity();
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -16);  // m/4 * 2^-14
  return sign * std::ldexp(static_cast<float>(4 + mantissa), exponent - 17);      // (1+m/4) 2^(e-15)
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Header parse_header(std::string_view json_text, uint64_t data_size, const std::string& label) {
  LS_CHECK(core::is_valid_utf8(json_text), label, ": header is not valid UTF-8; ", kCorruptHint);
  HeaderScan scan;
  json::sax_parse(json_text.begin(), json_text.end(), &scan);
  LS_CHECK(scan.error.empty(), label, ": ", scan.error, "; ", kCorruptHint);
  const json root = json::parse(json_text.begin(), json_text.end());
  LS_CHECK(root.is_object(), label, ": header is a JSON ", json_kind(root), ", not an object; ",
           kCorruptHint);

  Header header;
  header.tensors.reserve(root.size());
  for (const auto& [key, value] : root.items()) {
    if (key == kMetadataKey) {
      read_metadata(value, label, &header);
    } else {
      header.tensors.push_back(read_tensor(key, value, label));
    }
  }
  check_layout(header.tensors, data_size, label);
  return header;
}

Header parse_file_bytes(std::string_view bytes, const std::string& label) {
  LS_CHECK(bytes.size() >= 8, label, ": file is ", bytes.size(),
           " bytes, shorter than the 8-byte header length; ", kCorruptHint);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  LS_CHECK(n <= kMaxHeaderSize, label, ": header length ", n, " exceeds the ", kMaxHeaderSize,
           "-byte limit; ", kCorruptHint);
  LS_CHECK(n <= bytes.size() - 8, label, ": header length ", n, " runs beyond the end of the ",
           bytes.size(), "-byte file; ", kCorruptHint);
  return parse_header(bytes.substr(8, n), bytes.size() - 8 - n, label);
}

std::string serialize_header(const std::vector<TensorInfo>& tensors,
                             const std::map<std::string, std::string>& metadata,
                             const std::string& label) {
  // Written piecewise rather than through ordered_json, whose key lookup is linear: a full SDXL
  // checkpoint has ~2,500 tensors.
  std::string text = "{";
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [key, value] : metadata) {
      LS_CHECK(core::is_valid_utf8(key) && core::is_valid_utf8(value), label, ": metadata ", printable(key),
               " is not valid UTF-8; pass UTF-8 text");
      meta[key] = value;
    }
    text += "\"__metadata__\":" + meta.dump();
  }
  std::unordered_set<std::string_view> seen;
  for (const auto& t : tensors) {
    LS_CHECK(core::is_valid_utf8(t.name), label, ": tensor name ", printable(t.name),
             " is not valid UTF-8; rename it");
    LS_CHECK(t.name != kMetadataKey, label, ": a tensor cannot be named \"__metadata__\"; rename it");
    LS_CHECK(seen.insert(t.name).second, label, ": tensor ", printable(t.name),
             " is given twice; pass each name once");
    if (text.size() > 1) text += ',';
    text += json(t.name).dump();
    text += ":{\"dtype\":\"" + dtype_name(t.dtype) + "\",\"shape\":" + json(t.shape).dump() +
            ",\"data_offsets\":[" + std::to_string(t.begin) + "," + std::to_string(t.end) + "]}";
  }
  text += '}';
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps tensor data 8-byte aligned, as Python/Rust
  LS_CHECK(text.size() <= kMaxHeaderSize, label, ": header would be ", text.size(),
           " bytes, over the ", kMaxHeaderSize, "-byte limit readers accept; save fewer tensors");
  return text;
}

uint64_t lay_out(std::vector<TensorInfo>& tensors) {
  uint64_t offset = 0;
  for (auto& info : tensors) {
    info.begin = offset;
    offset += static_cast<uint64_t>(info.numel()) * dtype_size(info.dtype);
    info.end = offset;
  }
  return offset;
}

std::string header_length_bytes(uint64_t header_size) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header_size >> (8 * i)) & 0xff);
  return bytes;
}

}  // namespace ls::io
