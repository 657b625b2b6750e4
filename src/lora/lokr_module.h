// LyCORIS LoKr on one Linear or Conv2d: dW = kron(w1, w2) * alpha / rank, the layer's output and
// input dimensions each split in two factors (lycoris' factorization); the small w1 [out1, in1] is
// usually full, the large w2 [out2, in2(, k, k)] a rank-r product (or a Tucker core over the
// kernel), each full when the rank is too large to save anything. Matches lycoris-lora 4.1.3
// lycoris/modules/lokr.py and functional/lokr.py (make_kron, rebuild_tucker).
#pragma once

#include "lora/adapter_module.h"

namespace ls::lora {

/// lycoris' factorization(dimension, factor): (m, n), m * n = dimension, m <= n, m the divisor
/// nearest the factor from below (nearest sqrt(dimension) when factor < 0).
std::pair<int64_t, int64_t> lokr_factorization(int64_t dimension, int64_t factor);

/// The factor shapes lycoris picks for a base weight (options.lokr_layout when a file gave them).
LokrLayout lokr_layout(c10::IntArrayRef base, const LoraModuleOptions& options);

/// lokr_w1 [out1, in1] or lokr_w1_a [out1, r] + lokr_w1_b [r, in1]; lokr_w2 [out2, in2(, k, k)] or
/// lokr_w2_a [out2, r] + lokr_w2_b [r, in2*k*k], or with Tucker lokr_w2_a [r, out2] + lokr_w2_b
/// [r, in2] + lokr_t2 [r, r, k, k].
TensorShapes lokr_tensor_shapes(c10::IntArrayRef base, const LoraModuleOptions& options);

class LokrModule : public AdapterModule {
 public:
  /// Fresh module, lycoris' init: w1 (or w1_a, w1_b) and w2_a, t2 Kaiming-uniform(a = sqrt 5),
  /// w2_b (or a full w2) zeros, so dW = 0. Both halves full: alpha = rank (scale 1), as lycoris.
  LokrModule(const LoraTarget& target, const LoraModuleOptions& options);

  torch::Tensor diff_weight() const override;
  double scale() const override;
  const LokrLayout& layout() const { return layout_; }

 private:
  LokrLayout layout_;
  torch::Tensor w1_, w1a_, w1b_, w2_, w2a_, w2b_, t2_;
};

}  // namespace ls::lora
