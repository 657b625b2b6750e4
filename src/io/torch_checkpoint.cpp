// TorchCheckpoint: mmap + io/torch_archive's validated index; each load copies one saved view
// (storage, offset, stride) into a new contiguous tensor, as torch.load followed by .contiguous().
#include "io/torch_checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <torch/torch.h>

#include "core/error.h"
#include "io/safetensors.h"  // torch_dtype(Dtype)
#include "io/torch_archive.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "torch.save data is read as little-endian; a big-endian host would need byte swaps");

namespace ls::io {

struct TorchCheckpoint::Mapping {
  const char* bytes = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (bytes) ::munmap(const_cast<char*>(bytes), size);
  }
};

TorchCheckpoint::TorchCheckpoint(const std::filesystem::path& path) : path_(path) {
  const std::string label = path.string();
  auto map = std::make_unique<Mapping>();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  LS_CHECK(fd >= 0, label, ": cannot open (", std::strerror(errno), "); check the path");
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  void* addr = stat_ok && S_ISREG(st.st_mode) && st.st_size > 0
                   ? ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0)
                   : MAP_FAILED;
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file
  LS_CHECK(stat_ok, label, ": cannot stat (", std::strerror(map_errno), ")");
  LS_CHECK(S_ISREG(st.st_mode), label, ": is not a regular file; pass a pytorch_model.bin file");
  if (st.st_size == 0) index_torch_save({}, label);  // throws "the file is empty"; mmap(0) fails
  LS_CHECK(addr != MAP_FAILED, label, ": cannot mmap ", st.st_size, " bytes (", std::strerror(map_errno), ")");
  map->bytes = static_cast<const char*>(addr);
  map->size = static_cast<size_t>(st.st_size);
  tensors_ = index_torch_save(std::string_view(map->bytes, map->size), label).tensors;
  map_ = std::move(map);
  index_.reserve(tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

TorchCheckpoint::~TorchCheckpoint() = default;
TorchCheckpoint::TorchCheckpoint(TorchCheckpoint&& other) noexcept = default;
TorchCheckpoint& TorchCheckpoint::operator=(TorchCheckpoint&& other) noexcept = default;

const TorchTensorInfo* TorchCheckpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TorchTensorInfo& TorchCheckpoint::require(const std::string& name) const {
  const TorchTensorInfo* info = find(name);
  LS_CHECK(info != nullptr, path_.string(), ": no tensor named '", name,
           "'; check the key (the file holds ", tensors_.size(), " tensors)");
  return *info;
}

at::Tensor TorchCheckpoint::load_as(const TorchTensorInfo& info, c10::ScalarType dtype,
                                    c10::Device device) const {
  at::Tensor out = torch::empty(info.shape, torch::TensorOptions().dtype(dtype).device(device));
  if (out.numel() == 0) return out;
  // The index has checked that the view lies inside the storage and the storage inside the file.
  const char* bytes = map_->bytes + info.storage_begin;
  const auto elem = static_cast<int64_t>(dtype_size(info.dtype));
  const bool is_bool = info.dtype == Dtype::kBool;
  // Bool bytes other than 0/1 are undefined for torch: they are read as uint8 and normalised.
  const c10::ScalarType stored = is_bool ? torch::kUInt8 : torch_dtype(info.dtype);
  at::Tensor storage;
  if (reinterpret_cast<uintptr_t>(bytes) % static_cast<uintptr_t>(elem) == 0) {
    storage = torch::from_blob(const_cast<char*>(bytes), {info.storage_numel}, torch::TensorOptions().dtype(stored));
  } else {  // torch.save aligns storages to 64 bytes; another writer might not
    storage = torch::empty({info.storage_numel}, torch::TensorOptions().dtype(stored));
    std::memcpy(storage.data_ptr(), bytes, info.storage_bytes);
  }
  at::Tensor view = storage.as_strided(info.shape, info.stride, info.storage_offset);
  out.copy_(is_bool ? view.ne(0) : view);  // one copy: dtype conversion and device move included
  return out;
}

at::Tensor TorchCheckpoint::load(const std::string& name) const {
  const TorchTensorInfo& info = require(name);
  return load_as(info, torch_dtype(info.dtype), torch::kCPU);
}

at::Tensor TorchCheckpoint::load(const std::string& name, c10::ScalarType dtype, c10::Device device) const {
  const TorchTensorInfo& info = require(name);
  return load_as(info, dtype_is_floating(info.dtype) ? dtype : torch_dtype(info.dtype), device);
}

}  // namespace ls::io
