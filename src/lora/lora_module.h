// One LoRA adapter on one Linear or Conv2d: delta(x) = up(down(x)) * multiplier * alpha / rank,
// with kohya's dropout, rank dropout and module dropout while training. Matches kohya-ss/sd-scripts
// networks/lora.py (LoRAModule); as lycoris' LoConModule (lycoris/modules/locon.py, algo lora or
// locon, optionally with DoRA) the same tensors go through AdapterModule's weight-rebuild forward.
#pragma once

#include "lora/adapter_module.h"

#include <torch/nn/pimpl.h>

namespace ls::lora {

/// lora_down.weight [r, in(, k, k)], lora_up.weight [out, r(, 1, 1)].
TensorShapes lora_tensor_shapes(c10::IntArrayRef base, const LoraModuleOptions& options);

class LoraModuleImpl : public AdapterModule {
 public:
  /// Fresh module: down Kaiming-uniform (a = sqrt 5), up zeros, as kohya and lycoris.
  LoraModuleImpl(const LoraTarget& target, const LoraModuleOptions& options);

  torch::Tensor diff_weight() const override;

  // kohya's names: lora_down.weight [r, in] or [r, in, k, k]; lora_up.weight [out, r] or [out, r, 1, 1].
  nn::Linear lora_down_linear{nullptr}, lora_up_linear{nullptr};
  nn::Conv2d lora_down_conv{nullptr}, lora_up_conv{nullptr};
  torch::Tensor down() const { return target_.is_conv() ? lora_down_conv->weight : lora_down_linear->weight; }
  torch::Tensor up() const { return target_.is_conv() ? lora_up_conv->weight : lora_up_linear->weight; }

 protected:
  // kohya's networks.lora works through the rank bottleneck (its dropouts act there).
  bool bypass() const override { return !options_.lycoris && !options_.dora; }
  torch::Tensor bypass_delta(const torch::Tensor& x) override;
};
TORCH_MODULE(LoraModule);

}  // namespace ls::lora
