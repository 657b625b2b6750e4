// libFuzzer target for the torch.save reader without torch: io/zip_archive, io/torch_pickle (the
// restricted unpickler) and io/torch_archive (layout and storage bounds). Any byte string must parse
// or throw ls::Error; crashes, hangs, sanitizer reports and other exceptions are bugs. Each input is
// tried three ways: as a whole file, as data.pkl alone (so mutations reach the unpickler without a
// zip around them) and as a bare zip archive. Built and run by scripts/fuzz (no torch).
// fuzz-what: torch.save reader (zip, restricted unpickler)
// fuzz-sources: src/io/zip_archive.cpp src/io/torch_pickle.cpp src/io/torch_archive.cpp
// fuzz-sources: src/io/safetensors_header.cpp src/core/utf8.cpp src/core/strings.cpp
// fuzz-max-len: 8192
// fuzz-share: 4
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "io/torch_archive.h"
#include "io/torch_pickle.h"
#include "io/zip_archive.h"

namespace {

// What a successful index promises TorchCheckpoint::load: the storage lies inside the file and
// holds storage_numel elements, and every element the view reads lies inside the storage.
bool fz_in_bounds(const ls::io::TorchTensorInfo& t, size_t file_size) {
  const uint64_t elem = ls::io::dtype_size(t.dtype);
  if (t.storage_begin > file_size || t.storage_bytes > file_size - t.storage_begin) return false;
  if (static_cast<unsigned __int128>(t.storage_numel) * elem != t.storage_bytes) return false;
  if (t.shape.size() != t.stride.size() || t.storage_offset < 0) return false;
  __int128 last = t.storage_offset;
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (t.shape[i] < 0 || t.stride[i] < 0) return false;
    if (t.shape[i] == 0) return true;
    last += static_cast<__int128>(t.shape[i] - 1) * t.stride[i];
  }
  return last < t.storage_numel;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    // The fuzzer cannot forge CRC-32s, so data.pkl's is not checked here (the reader checks it).
    const ls::io::TorchSaveIndex index = ls::io::index_torch_save(bytes, "fuzz", /*verify_pickle_crc=*/false);
    for (const auto& t : index.tensors)
      if (!fz_in_bounds(t, size)) __builtin_trap();
  } catch (const ls::Error&) {
  }
  try {
    for (const auto& t : ls::io::parse_state_dict_pickle(bytes, "fuzz"))
      if (t.shape.size() != t.stride.size() || t.shape.size() > ls::io::kMaxTensorDims) __builtin_trap();
  } catch (const ls::Error&) {
  }
  try {
    const ls::io::ZipArchive zip(bytes, "fuzz");
    for (const auto& e : zip.entries()) {
      if (e.offset > size || e.size > size - e.offset || zip.find(e.name) != &e) __builtin_trap();
      zip.verify_crc(e);
    }
  } catch (const ls::Error&) {
  }
  return 0;
}
