#include "lora/plan.h"

#include <algorithm>

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
    const int64_t rank = slot_rank(slot, options).rank;
    auto base = slot.target.weight().sizes();  // [out, in] or [out, in, k, k]
    std::vector<int64_t> down{rank, base[1]}, up{base[0], rank};
    if (base.size() == 4) {
      down.insert(down.end(), {base[2], base[3]});
      up.insert(up.end(), {1, 1});
    }
    auto add = [&](const std::string& suffix, std::vector<int64_t> shape) {
      io::TensorInfo info;
      info.name = slot.name + suffix;
      info.shape = std::move(shape);
      plan.parameters[slot.part] += info.numel();
      plan.tensors.push_back(std::move(info));
    };
    add(".alpha", {});
    add(".lora_down.weight", down);
    add(".lora_up.weight", up);
    plan.modules[slot.part] += 1;
  }
  std::sort(plan.tensors.begin(), plan.tensors.end(),
            [](const io::TensorInfo& a, const io::TensorInfo& b) { return a.name < b.name; });
  return plan;
}

}  // namespace ls::lora
