// torch.save's data.pkl without torch: a restricted unpickler that accepts only what a state dict of
// tensors uses (the archive around it is io/torch_archive.h). A pickle is a program; this one is
// never run: the machine knows no callable but OrderedDict and torch's three tensor rebuilders, takes
// the torch.<Dtype>Storage classes as names only, and refuses every other global by name.
// References: torch/serialization.py (_save, _load), torch/_utils.py (_rebuild_tensor_v2,
// _rebuild_parameter[_with_state]), CPython Lib/pickle.py (opcodes). Torch-free on purpose: the
// libFuzzer target fuzz/fuzz_torch_pickle.cpp links it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors_header.h"  // Dtype, dtype_size, dtype_name

namespace ls::io {

struct TorchTensorInfo {
  std::string name;
  Dtype dtype = Dtype::kF32;      // of the storage (torch.HalfStorage -> kF16, ...)
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;    // in elements, as saved: torch.save keeps a view's strides
  int64_t storage_offset = 0;     // in elements
  std::string storage_key;        // the archive's data/<key>
  int64_t storage_numel = 0;      // elements in the storage, as the pickle says
  std::string location;           // where it was saved from: "cpu", "cuda:0", ...
  bool requires_grad = false;
  bool is_parameter = false;      // an nn.Parameter (torch._utils._rebuild_parameter)
  // Set by index_torch_save: the storage's bytes within the file.
  uint64_t storage_begin = 0;
  uint64_t storage_bytes = 0;

  /// Product of shape (1 for a 0-d tensor).
  int64_t numel() const;
};

/// Limits against pickle bombs: objects the machine may create (a state dict needs about ten per
/// tensor, so this allows ~400k tensors) and dimensions per tensor.
constexpr size_t kMaxPickleObjects = size_t(1) << 22;
constexpr size_t kMaxTensorDims = 64;

/// Reads a torch.save data.pkl (protocols 2-5) into its tensor records, in the pickle's order.
/// The top level must be a dict (OrderedDict or plain) of name -> tensor; a dict whose
/// "state_dict" or "model" entry is such a dict (a training checkpoint of plain values) is read
/// through that entry. Any global other than collections.OrderedDict, torch._utils.
/// _rebuild_tensor_v2 / _rebuild_parameter / _rebuild_parameter_with_state and the torch.<Dtype>
/// Storage classes is refused before anything else happens, naming it. Shapes, strides and offsets
/// are checked for sign and overflow, not against storages (io/torch_archive.h does that).
/// Throws ls::Error "<label>: ..." (one line).
std::vector<TorchTensorInfo> parse_state_dict_pickle(std::string_view pickle, const std::string& label);

}  // namespace ls::io
