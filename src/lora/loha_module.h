// LyCORIS LoHa on one Linear or Conv2d: dW = (w1_a @ w1_b) * (w2_a @ w2_b) * alpha / rank, a
// Hadamard product of two rank-r products (rank r^2 at the cost of 2r); with use_tucker a conv's
// kernel goes into cores hada_t1/t2. Matches lycoris-lora 4.1.3 lycoris/modules/loha.py and
// functional/loha.py (HadaWeight, HadaWeightTucker: their hand-written backward is the gradient
// autograd gives, so plain autograd is used here).
#pragma once

#include "lora/adapter_module.h"

namespace ls::lora {

/// hada_w1_a [out, r], hada_w1_b [r, in*k*k], hada_w2_a, hada_w2_b likewise; with Tucker
/// (a conv with k > 1 and options.tucker): hada_w1_a [r, out], hada_w1_b [r, in], hada_t1 [r, r, k, k].
TensorShapes loha_tensor_shapes(c10::IntArrayRef base, const LoraModuleOptions& options);

class LohaModule : public AdapterModule {
 public:
  /// Fresh module, lycoris' init: w1_b, w2_b ~ N(0, 1), w1_a ~ N(0, 0.1), w2_a = 0 (so dW = 0),
  /// Tucker cores ~ N(0, 0.1).
  LohaModule(const LoraTarget& target, const LoraModuleOptions& options);

  torch::Tensor diff_weight() const override;
  bool tucker() const { return t1_.defined(); }

 private:
  torch::Tensor w1a_, w1b_, w2a_, w2b_, t1_, t2_;
};

}  // namespace ls::lora
