// Safetensors files with torch: an mmap reader (validated at open, tensors copied out on demand,
// consumed pages released) and an atomic writer. Format: huggingface/safetensors docs and
// safetensors/src/tensor.rs; the header rules live in io/safetensors_header.h.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "io/safetensors_header.h"

namespace ls::io {

class SafetensorsReader {
 public:
  /// Opens, mmaps (read-only, MAP_PRIVATE) and validates the whole header against the file size,
  /// so truncated or malformed files fail here with an ls::Error naming the file.
  explicit SafetensorsReader(const std::filesystem::path& path);
  ~SafetensorsReader();  // munmap
  SafetensorsReader(SafetensorsReader&& other) noexcept;
  SafetensorsReader& operator=(SafetensorsReader&& other) noexcept;
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// In file (offset) order.
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  /// nullptr if absent.
  const TensorInfo* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }

  /// CPU copy in the stored dtype. F8_* are decoded exactly to float32 (libtorch 1.13 has no
  /// float8), U16/U32 widened to int32/int64; U64 and unknown names throw ls::Error.
  at::Tensor load(const std::string& name) const;
  /// Floating tensors converted to `dtype` on `device`, reading straight from the mapping so at
  /// most one extra copy is alive; integer and bool tensors keep their dtype.
  at::Tensor load(const std::string& name, c10::ScalarType dtype, c10::Device device) const;
  /// Drops the tensor's pages from this process (madvise MADV_DONTNEED) once it has been consumed,
  /// so loading a whole checkpoint does not keep the file resident on top of the converted copy.
  /// Later loads of any tensor still work (the pages are re-read from the file).
  void release(const std::string& name) const;

  /// The whole data section (kohya's sshs_model_hash is sha256 of these bytes).
  std::string_view data_bytes() const { return data_; }
  std::string_view tensor_bytes(const TensorInfo& info) const;

 private:
  const TensorInfo& require(const std::string& name) const;
  void unmap();

  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::string_view data_;
  Header header_;
  std::unordered_map<std::string, size_t> index_;
};

/// Writes atomically (core::AtomicFile). Floating tensors are converted to float_dtype when given;
/// one contiguous CPU copy at a time. Header: "__metadata__" first (omitted when empty), tensors
/// laid out in the order given, JSON padded with spaces to 8-byte alignment.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {},
                      std::optional<c10::ScalarType> float_dtype = std::nullopt);

/// Format dtype of a torch dtype; ls::Error for dtypes the format lacks (complex, quantized...).
Dtype dtype_from_torch(c10::ScalarType dtype);
/// Torch dtype load() returns for a stored dtype (F8 -> float32, U16 -> int32, U32 -> int64).
c10::ScalarType torch_dtype(Dtype dtype);

}  // namespace ls::io
