// The safetensors format without torch: dtypes, header parsing with strict validation, and
// header serialisation. Validation matches huggingface/safetensors safetensors/src/tensor.rs
// (`read_metadata`, `Metadata::validate`) and adds duplicate-key and exact-field checks.
// Torch-free on purpose: the libFuzzer target (fuzz/fuzz_safetensors.cpp) links only this file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ls::io {

/// Element types of the format. kU16/kU32/kU64 exist in the format but not in libtorch 1.13:
/// the reader widens U16/U32 to int32/int64 and refuses U64 at load time.
enum class Dtype { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool, kF8E4M3, kF8E5M2,
                   kU16, kU32, kU64 };

/// "F32", "F8_E4M3", ... as written in the format.
std::string dtype_name(Dtype dtype);
/// Bytes per element.
size_t dtype_size(Dtype dtype);
/// nullopt for a name the format does not define (or lorastudio does not know).
std::optional<Dtype> dtype_from_name(std::string_view name);
bool dtype_is_floating(Dtype dtype);

/// Exact float32 value of one float8 byte. E4M3 is the "fn" variant (torch.float8_e4m3fn): no
/// infinities, S.1111.111 is NaN, max 448. E5M2 is IEEE-like: inf and NaN at exponent 31, max 57344.
float f8_e4m3_to_float(uint8_t bits);
float f8_e5m2_to_float(uint8_t bits);

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // offsets within the data section
  int64_t numel() const;
};

struct Header {
  std::vector<TensorInfo> tensors;  // in file (offset) order
  std::map<std::string, std::string> metadata;
};

/// Largest header accepted, as the Rust implementation (MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderSize = 100'000'000;

/// Validates everything; throws ls::Error "<label>: <what is wrong>; <what to do>" (one line).
/// json_text is the header (may be padded with trailing spaces); data_size the bytes after it.
Header parse_header(std::string_view json_text, uint64_t data_size, const std::string& label);
/// Whole-buffer parse (8-byte LE header length + JSON + data), what the fuzzer calls.
Header parse_file_bytes(std::string_view bytes, const std::string& label);

/// The JSON header for these tensors ("__metadata__" first when non-empty, tensors in the order
/// given), padded with spaces to a multiple of 8 bytes. Offsets are taken from the infos as they
/// are; the caller lays them out. Throws ls::Error (naming `label`) for non-UTF-8 names or values.
std::string serialize_header(const std::vector<TensorInfo>& tensors,
                             const std::map<std::string, std::string>& metadata,
                             const std::string& label);

/// Sets begin/end of each tensor from its dtype and shape, packed in the order given (the layout
/// the writer uses); returns the size of the data section.
uint64_t lay_out(std::vector<TensorInfo>& tensors);

/// The 8-byte little-endian header length that opens a file.
std::string header_length_bytes(uint64_t header_size);

}  // namespace ls::io
