// Safetensors mmap reader and atomic writer over libtorch. Layout as huggingface/safetensors
// (8-byte LE header length, JSON padded with spaces to 8 bytes, raw little-endian C-order data);
// the header rules are in io/safetensors_header.cpp.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <torch/torch.h>

#include "core/atomic_file.h"
#include "core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

namespace ls::io {
namespace {

struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

bool is_f8(Dtype dtype) { return dtype == Dtype::kF8E4M3 || dtype == Dtype::kF8E5M2; }
bool needs_widening(Dtype dtype) { return dtype == Dtype::kU16 || dtype == Dtype::kU32; }

// Decodes formats libtorch 1.13 cannot hold (float8, uint16, uint32) into a new CPU tensor.
at::Tensor decode(const TensorInfo& info, std::string_view bytes) {
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  const int64_t n = info.numel();
  at::Tensor out = torch::empty(info.shape, torch::TensorOptions().dtype(torch_dtype(info.dtype)));
  if (is_f8(info.dtype)) {
    float table[256];
    for (int b = 0; b < 256; ++b)
      table[b] = info.dtype == Dtype::kF8E4M3 ? f8_e4m3_to_float(static_cast<uint8_t>(b))
                                              : f8_e5m2_to_float(static_cast<uint8_t>(b));
    float* dst = out.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) dst[i] = table[src[i]];
  } else if (info.dtype == Dtype::kU16) {
    int32_t* dst = out.data_ptr<int32_t>();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, src + 2 * i, 2);
      dst[i] = v;
    }
  } else {  // kU32
    int64_t* dst = out.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      uint32_t v;
      std::memcpy(&v, src + 4 * i, 4);
      dst[i] = v;
    }
  }
  return out;
}

// An owning CPU copy of the stored bytes.
at::Tensor copy_out(const TensorInfo& info, std::string_view bytes) {
  if (is_f8(info.dtype) || needs_widening(info.dtype)) return decode(info, bytes);
  // Bool bytes other than 0/1 are undefined for torch: read as uint8 and normalise.
  const auto stored = info.dtype == Dtype::kBool ? torch::kUInt8 : torch_dtype(info.dtype);
  at::Tensor out = torch::empty(info.shape, torch::TensorOptions().dtype(stored));
  if (!bytes.empty()) std::memcpy(out.data_ptr(), bytes.data(), bytes.size());
  return info.dtype == Dtype::kBool ? out.ne(0) : out;
}

}  // namespace

Dtype dtype_from_torch(c10::ScalarType dtype) {
  switch (dtype) {
    case torch::kDouble: return Dtype::kF64;
    case torch::kFloat: return Dtype::kF32;
    case torch::kHalf: return Dtype::kF16;
    case torch::kBFloat16: return Dtype::kBF16;
    case torch::kLong: return Dtype::kI64;
    case torch::kInt: return Dtype::kI32;
    case torch::kShort: return Dtype::kI16;
    case torch::kChar: return Dtype::kI8;
    case torch::kByte: return Dtype::kU8;
    case torch::kBool: return Dtype::kBool;
    default:
      LS_FAIL("torch dtype ", c10::toString(dtype),
              " has no safetensors equivalent; convert the tensor to a float, int or bool dtype");
  }
}

c10::ScalarType torch_dtype(Dtype dtype) {
  switch (dtype) {
    case Dtype::kF64: return torch::kDouble;
    case Dtype::kF32: return torch::kFloat;
    case Dtype::kF16: return torch::kHalf;
    case Dtype::kBF16: return torch::kBFloat16;
    case Dtype::kI64: return torch::kLong;
    case Dtype::kI32: return torch::kInt;
    case Dtype::kI16: return torch::kShort;
    case Dtype::kI8: return torch::kChar;
    case Dtype::kU8: return torch::kByte;
    case Dtype::kBool: return torch::kBool;
    case Dtype::kF8E4M3:
    case Dtype::kF8E5M2: return torch::kFloat;
    case Dtype::kU16: return torch::kInt;
    case Dtype::kU32: return torch::kLong;
    case Dtype::kU64: break;
  }
  LS_FAIL("safetensors dtype ", dtype_name(dtype),
          " has no libtorch equivalent; convert the tensor to I64 or a float dtype");
}

SafetensorsReader::SafetensorsReader(const std::filesystem::path& path) : path_(path) {
  const std::string label = path.string();
  FileDescriptor file;
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  LS_CHECK(file.fd >= 0, label, ": cannot open (", std::strerror(errno), "); check the path");
  struct stat st {};
  LS_CHECK(::fstat(file.fd, &st) == 0, label, ": cannot stat (", std::strerror(errno), ")");
  LS_CHECK(S_ISREG(st.st_mode), label, ": is not a regular file; pass a .safetensors file");
  map_size_ = static_cast<size_t>(st.st_size);
  if (map_size_ == 0) parse_file_bytes({}, label);  // throws the "too short" error; mmap(0) fails
  map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, file.fd, 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    LS_FAIL(label, ": cannot mmap ", map_size_, " bytes (", std::strerror(errno), ")");
  }
  try {
    const std::string_view bytes(static_cast<const char*>(map_), map_size_);
    header_ = parse_file_bytes(bytes, label);
    uint64_t header_len = 0;
    std::memcpy(&header_len, bytes.data(), 8);
    data_ = bytes.substr(8 + header_len);
    index_.reserve(header_.tensors.size());
    for (size_t i = 0; i < header_.tensors.size(); ++i) index_.emplace(header_.tensors[i].name, i);
  } catch (...) {
    unmap();  // the destructor does not run for a throwing constructor
    throw;
  }
}

SafetensorsReader::~SafetensorsReader() { unmap(); }

SafetensorsReader::SafetensorsReader(SafetensorsReader&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      data_(std::exchange(other.data_, {})),
      header_(std::move(other.header_)),
      index_(std::move(other.index_)) {}

SafetensorsReader& SafetensorsReader::operator=(SafetensorsReader&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    data_ = std::exchange(other.data_, {});
    header_ = std::move(other.header_);
    index_ = std::move(other.index_);
  }
  return *this;
}

void SafetensorsReader::unmap() {
  if (map_) ::munmap(map_, map_size_);
  map_ = nullptr;
  map_size_ = 0;
  data_ = {};
}

const TensorInfo* SafetensorsReader::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

const TensorInfo& SafetensorsReader::require(const std::string& name) const {
  const TensorInfo* info = find(name);
  LS_CHECK(info != nullptr, path_.string(), ": no tensor named '", name,
           "'; check the key (the file holds ", header_.tensors.size(), " tensors)");
  return *info;
}

std::string_view SafetensorsReader::tensor_bytes(const TensorInfo& info) const {
  return data_.substr(info.begin, info.end - info.begin);
}

at::Tensor SafetensorsReader::load(const std::string& name) const {
  const TensorInfo& info = require(name);
  torch_dtype(info.dtype);  // refuses U64 with a clear message
  return copy_out(info, tensor_bytes(info));
}

at::Tensor SafetensorsReader::load(const std::string& name, c10::ScalarType dtype,
                                   c10::Device device) const {
  const TensorInfo& info = require(name);
  const c10::ScalarType stored = torch_dtype(info.dtype);
  const c10::ScalarType wanted = dtype_is_floating(info.dtype) ? dtype : stored;
  const std::string_view bytes = tensor_bytes(info);
  const auto address = reinterpret_cast<uintptr_t>(bytes.data());
  const bool direct = !is_f8(info.dtype) && !needs_widening(info.dtype) &&
                      info.dtype != Dtype::kBool && address % dtype_size(info.dtype) == 0;
  if (!direct) return copy_out(info, bytes).to(device, wanted);  // no copy when already right
  // Read straight from the mapping: the conversion (or the copy=true) makes the only new buffer.
  at::Tensor view = torch::from_blob(const_cast<char*>(bytes.data()), info.shape,
                                     torch::TensorOptions().dtype(stored));
  return view.to(device, wanted, /*non_blocking=*/false, /*copy=*/true);
}

void SafetensorsReader::release(const std::string& name) const {
  const TensorInfo& info = require(name);
  if (info.begin == info.end) return;
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<uintptr_t>(data_.data() + info.begin) & ~(page - 1);
  const auto stop = reinterpret_cast<uintptr_t>(data_.data() + info.end);
  // Neighbouring tensors sharing the edge pages are unaffected: the mapping is private and never
  // written, so dropped pages are simply read back from the file on the next touch.
  ::madvise(reinterpret_cast<void*>(start), stop - start, MADV_DONTNEED);
}

void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata,
                      std::optional<c10::ScalarType> float_dtype) {
  const std::string label = path.string();
  if (float_dtype) {
    LS_CHECK(c10::isFloatingType(*float_dtype), label, ": float_dtype ", c10::toString(*float_dtype),
             " is not a floating dtype; pass fp32, fp16 or bf16");
    dtype_from_torch(*float_dtype);
  }
  // Plan the whole layout first so every error comes before the first byte is written.
  std::vector<TensorInfo> infos;
  std::vector<c10::ScalarType> out_dtypes;
  for (const auto& [name, tensor] : tensors) {
    LS_CHECK(tensor.defined(), label, ": tensor '", name, "' is undefined; pass a real tensor");
    LS_CHECK(tensor.layout() == torch::kStrided, label, ": tensor '", name,
             "' is sparse; convert it with to_dense() first");
    c10::ScalarType out = tensor.scalar_type();
    if (float_dtype && c10::isFloatingType(out)) out = *float_dtype;
    TensorInfo info;
    info.name = name;
    info.dtype = dtype_from_torch(out);
    info.shape = tensor.sizes().vec();
    infos.push_back(std::move(info));
    out_dtypes.push_back(out);
  }
  lay_out(infos);
  const std::string header = serialize_header(infos, metadata, label);

  core::AtomicFile file(path);
  const std::string length = header_length_bytes(header.size());
  file.write(length.data(), length.size());
  file.write(header.data(), header.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    // One contiguous CPU copy at a time (none when the tensor already is one).
    at::Tensor cpu = tensors[i].second.detach().to(torch::kCPU, out_dtypes[i]).contiguous();
    file.write(cpu.data_ptr(), infos[i].end - infos[i].begin);
  }
  file.commit();
}

}  // namespace ls::io
