// torch.save's zip format without torch: the archive layout around data.pkl (<name>/data.pkl,
// <name>/byteorder, <name>/data/<key> storages; torch/serialization.py _save and
// caffe2/serialize/inline_container.cc PyTorchStreamReader) over io/zip_archive and the restricted
// unpickler of io/torch_pickle. Torch-free on purpose: fuzz/fuzz_torch_pickle.cpp links it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "io/torch_pickle.h"

namespace ls::io {

struct TorchSaveIndex {
  std::string archive_name;             // the top folder: torch.save names it after the file
  std::vector<TorchTensorInfo> tensors;  // in the pickle's order, storage_begin/bytes set
};

/// Parses a whole torch.save file in memory: recognises the legacy (pre-1.6, non-zip) format and
/// other non-archives with a message saying what to do, checks byteorder is little, verifies
/// data.pkl's CRC-32 (when verify_pickle_crc), parses it, and checks every tensor against its
/// storage: the data/<key> entry exists, holds storage_numel elements of the dtype, and the view's
/// elements (offset + sum (size-1) * stride) lie inside it. Throws ls::Error "<label>: ...".
TorchSaveIndex index_torch_save(std::string_view file, const std::string& label,
                                bool verify_pickle_crc = true);

}  // namespace ls::io
