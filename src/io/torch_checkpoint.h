// torch.save checkpoints (pytorch_model.bin) with torch: an mmap reader over io/torch_archive's
// index, whose tensors are copied out on demand with their saved dtype, shape, stride and offset.
// The pickle is never run (io/torch_pickle.h refuses every global a state dict does not use).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "io/torch_pickle.h"

namespace ls::io {

class TorchCheckpoint {
 public:
  /// Opens, mmaps (read-only, MAP_PRIVATE) and validates the whole file: the zip structure, the
  /// pickle (restricted), byteorder, and every tensor against its storage, so truncated, legacy,
  /// malicious or malformed files fail here with one ls::Error line "<path>: ...".
  explicit TorchCheckpoint(const std::filesystem::path& path);
  ~TorchCheckpoint();
  TorchCheckpoint(TorchCheckpoint&& other) noexcept;
  TorchCheckpoint& operator=(TorchCheckpoint&& other) noexcept;

  const std::filesystem::path& path() const { return path_; }
  /// In the pickle's (the state dict's) order.
  const std::vector<TorchTensorInfo>& tensors() const { return tensors_; }
  /// nullptr if absent.
  const TorchTensorInfo* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }

  /// A contiguous CPU copy with the file's dtype, shape and values (the saved view's stride and
  /// storage offset applied). requires_grad is not set.
  at::Tensor load(const std::string& name) const;
  /// Floating tensors converted to `dtype` on `device` in one copy; integer and bool tensors keep
  /// their dtype.
  at::Tensor load(const std::string& name, c10::ScalarType dtype, c10::Device device) const;

 private:
  const TorchTensorInfo& require(const std::string& name) const;
  at::Tensor load_as(const TorchTensorInfo& info, c10::ScalarType dtype, c10::Device device) const;

  struct Mapping;  // the read-only mmap of the whole file; munmap on destruction
  std::filesystem::path path_;
  std::unique_ptr<const Mapping> map_;
  std::vector<TorchTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace ls::io
