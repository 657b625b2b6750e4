#include "train/loss_scaler.h"

#include <algorithm>

#include <ATen/ATen.h>

namespace ls::train {

bool LossScaler::unscale(const std::vector<at::Tensor>& params) const {
  if (!enabled_) return true;
  // GradScaler.unscale_: one fused check-and-multiply per (device, dtype) group of gradients with
  // inv_scale = float32(1 / scale), found_inf a float32 flag on that device.
  struct Group {
    c10::Device device;
    c10::ScalarType dtype;
    std::vector<at::Tensor> grads;
  };
  std::vector<Group> groups;
  for (const at::Tensor& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const Group& x) { return x.device == g.device() && x.dtype == g.scalar_type(); });
    if (it == groups.end()) it = groups.insert(groups.end(), Group{g.device(), g.scalar_type(), {}});
    it->grads.push_back(g);
  }
  bool finite = true;
  for (Group& group : groups) {
    const auto opts = at::TensorOptions().dtype(at::kFloat).device(group.device);
    at::Tensor found_inf = at::zeros({}, opts);
    const at::Tensor inv_scale = at::full({}, 1.0 / state_.scale, opts);
    at::_amp_foreach_non_finite_check_and_unscale_(group.grads, found_inf, inv_scale);
    finite = finite && found_inf.item<float>() == 0.0f;
  }
  return finite;
}

void LossScaler::update(bool finite) {
  if (!enabled_) return;
  if (!finite) {
    state_.scale *= kBackoffFactor;
    state_.growth_tracker = 0;
    ++state_.skipped_steps;
    return;
  }
  if (++state_.growth_tracker == kGrowthInterval) {
    state_.scale *= kGrowthFactor;
    state_.growth_tracker = 0;
  }
}

}  // namespace ls::train
