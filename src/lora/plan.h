// What a LoRA network will be before it exists: its tensors (names, shapes), parameters per part
// and the exact file size at each save precision — computed from the model's layer shapes only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "io/safetensors_header.h"
#include "lora/network.h"

namespace ls::lora {

struct LoraPlan {
  std::vector<io::TensorInfo> tensors;  // kohya / lycoris keys, sorted, shapes set, dtype/offsets unset
  std::map<Part, int64_t> parameters;   // every tensor (alpha included) per part
  std::map<Part, int64_t> modules;
  int64_t total_parameters() const;
  /// Bytes of the saved file: 8 + header (with these metadata) + data in dtype.
  uint64_t file_size(io::Dtype dtype, const std::map<std::string, std::string>& metadata) const;
};

LoraPlan plan_network(const models::SdxlModel& model, const LoraNetworkOptions& options);

}  // namespace ls::lora
