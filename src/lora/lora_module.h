// One LoRA adapter on one Linear or Conv2d: delta(x) = up(down(x)) * multiplier * alpha / rank,
// with kohya's dropout, rank dropout and module dropout while training.
// Matches kohya-ss/sd-scripts networks/lora.py (LoRAModule).
#pragma once

#include <optional>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "nn/layers.h"

namespace ls::lora {

struct LoraModuleOptions {
  int64_t rank = 4;
  double alpha = 1.0;  // 0 means "= rank", as kohya
  double dropout = 0.0;         // on the rank-dim activations (kohya --network_dropout)
  double rank_dropout = 0.0;    // drops whole rank channels per sample, rescales
  double module_dropout = 0.0;  // skips the whole adapter per call with this probability
};

/// The base layer a LoRA module wraps: exactly one of linear / conv is set.
struct LoraTarget {
  nn::Linear linear{nullptr};
  nn::Conv2d conv{nullptr};
  int64_t in_features() const;
  int64_t out_features() const;
  bool is_conv() const { return static_cast<bool>(conv); }
  /// The base weight ([out, in] or [out, in, k, k]).
  torch::Tensor weight() const;
  void add_adapter(std::shared_ptr<nn::Adapter> adapter) const;
  void remove_adapter(const nn::Adapter* adapter) const;
};

class LoraModuleImpl : public torch::nn::Module, public nn::Adapter {
 public:
  /// Fresh module: down Kaiming-uniform (a = sqrt 5), up zeros, as kohya.
  LoraModuleImpl(const LoraTarget& target, const LoraModuleOptions& options);

  /// x as the base layer sees it -> the term added to the base output.
  torch::Tensor delta(const torch::Tensor& x) override;

  /// The weight difference this module stands for (multiplier included), shaped like the base weight.
  torch::Tensor weight_delta() const;

  int64_t rank() const { return rank_; }
  double alpha() const { return alpha_.item<double>(); }
  double scale() const { return alpha() / static_cast<double>(rank_); }
  void set_multiplier(double m) { multiplier_ = m; }
  double multiplier() const { return multiplier_; }
  const LoraTarget& target() const { return target_; }

  // kohya's names: lora_down.weight [r, in] or [r, in, k, k]; lora_up.weight [out, r] or [out, r, 1, 1].
  nn::Linear lora_down_linear{nullptr}, lora_up_linear{nullptr};
  nn::Conv2d lora_down_conv{nullptr}, lora_up_conv{nullptr};
  torch::Tensor alpha_;  // 0-dim buffer "alpha"

 private:
  LoraTarget target_;
  LoraModuleOptions options_;
  int64_t rank_;
  double multiplier_ = 1.0;
};
TORCH_MODULE(LoraModule);

}  // namespace ls::lora
