// libFuzzer target for the safetensors header parser (io/safetensors_header.cpp): any byte string
// must either parse or throw ls::Error; crashes, sanitizer reports and other exceptions are bugs.
// A header that parses must also survive serialize_header -> parse_header unchanged.
// Built and run by scripts/fuzz (clang++ -fsanitize=fuzzer,address,undefined, no torch).
// fuzz-what: safetensors header parser
// fuzz-sources: src/io/safetensors_header.cpp src/core/utf8.cpp
// fuzz-max-len: 4096
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "io/safetensors_header.h"

namespace {

bool same(const ls::io::Header& a, const ls::io::Header& b) {
  if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const auto &x = a.tensors[i], &y = b.tensors[i];
    if (x.name != y.name || x.dtype != y.dtype || x.shape != y.shape || x.begin != y.begin ||
        x.end != y.end)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ls::io::Header header;
  try {
    header = ls::io::parse_file_bytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const ls::Error&) {
    return 0;
  }
  // What a successful parse promises the reader: every tensor lies inside the buffer.
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  const uint64_t data_size = size - 8 - header_len;
  for (const auto& t : header.tensors) {
    if (t.begin > t.end || t.end > data_size ||
        t.end - t.begin != static_cast<uint64_t>(t.numel()) * ls::io::dtype_size(t.dtype))
      __builtin_trap();
  }
  // Not caught: an ls::Error here is a writer/reader disagreement and must abort the run.
  const std::string text = ls::io::serialize_header(header.tensors, header.metadata, "fuzz");
  if (text.size() % 8 != 0 || !same(ls::io::parse_header(text, data_size, "fuzz"), header))
    __builtin_trap();
  return 0;
}
