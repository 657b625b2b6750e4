// libFuzzer target for the safetensors header parser (io/safetensors_header.cpp): any byte string
// must either parse or throw ls::Error; crashes, sanitizer reports and other exceptions are bugs.
// Built and run by scripts/fuzz (clang++ -fsanitize=fuzzer,address,undefined, no torch).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ls::io::Header header =
        ls::io::parse_file_bytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    // What a successful parse promises the reader: every tensor lies inside the buffer.
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
    const uint64_t data_size = size - 8 - header_len;
    for (const auto& t : header.tensors) {
      if (t.begin > t.end || t.end > data_size ||
          t.end - t.begin != static_cast<uint64_t>(t.numel()) * ls::io::dtype_size(t.dtype))
        __builtin_trap();
    }
  } catch (const ls::Error&) {
  }
  return 0;
}
