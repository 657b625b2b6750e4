#include "lora/plan.h"

#include <algorithm>

#include "lora/adapters.h"

namespace ls::lora {

int64_t LoraPlan::total_parameters() const {
  int64_t n = 0;
  for (const auto& [part, count] : parameters) n += count;
  return n;
}

uint64_t LoraPlan::file_size(io::Dtype dtype, const std::map<std::string, std::string>& metadata) const {
  std::vector<io::TensorInfo> laid_out = tensors;
  for (auto& t : laid_out) t.dtype = dtype;
  uint64_t data = io::lay_out(laid_out);
  return 8 + io::serialize_header(laid_out, metadata, "plan").size() + data;
}

LoraPlan plan_network(const models::SdxlModel& model, const LoraNetworkOptions& options) {
  LoraPlan plan;
  for (const auto& slot : find_lora_slots(model, options)) {
    LoraModuleOptions o = options.module;  // the algorithm decides the tensors
    o.rank = slot_rank(slot, options).rank;
    for (const auto& [suffix, shape] : adapter_tensor_shapes(slot.target.weight().sizes(), o)) {
      io::TensorInfo info;
      info.name = slot.name + "." + suffix;
      info.shape = shape;
      plan.parameters[slot.part] += info.numel();
      plan.tensors.push_back(std::move(info));
    }
    plan.modules[slot.part] += 1;
  }
  std::sort(plan.tensors.begin(), plan.tensors.end(),
            [](const io::TensorInfo& a, const io::TensorInfo& b) { return a.name < b.name; });
  return plan;
}

}  // namespace ls::lora
