// Dynamic loss scaling for fp16 training, with torch.amp.GradScaler's semantics (the scaler kohya
// gets from accelerate with mixed_precision fp16): the loss is multiplied by the scale before
// backward; before the optimizer step the gradients are divided by it and checked; a non-finite
// gradient skips the step (and, as accelerate does, the LR scheduler's step) and halves the
// scale; 2000 clean steps in a row double it. Initial scale 65536 = 2^16. Scales stay powers of
// two, so scaling and unscaling are exact.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace ls::train {

struct LossScalerState {
  double scale = 65536.0;
  int64_t growth_tracker = 0;  // clean steps since the scale last changed
  int64_t skipped_steps = 0;   // optimizer steps skipped for non-finite gradients, in all
};

class LossScaler {
 public:
  static constexpr double kGrowthFactor = 2.0;
  static constexpr double kBackoffFactor = 0.5;
  static constexpr int64_t kGrowthInterval = 2000;

  /// A disabled scaler scales by 1 and never skips (bf16 and fp32 training).
  explicit LossScaler(bool enabled = false, LossScalerState state = {}) : enabled_(enabled), state_(state) {}

  bool enabled() const { return enabled_; }
  /// What the loss is multiplied by before backward (1 when disabled).
  double scale() const { return enabled_ ? state_.scale : 1.0; }

  /// Divides the defined gradients of `params` by the scale in place; true when every one is
  /// finite afterwards. One device-to-host read (the found-inf flag), as GradScaler's step makes.
  bool unscale(const std::vector<at::Tensor>& params) const;

  /// After the step: a skipped step (finite == false) halves the scale and restarts the count;
  /// a taken one counts towards growth.
  void update(bool finite);

  const LossScalerState& state() const { return state_; }

 private:
  bool enabled_;
  LossScalerState state_;
};

}  // namespace ls::train
