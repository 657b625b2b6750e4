// The network of a WD14 tagger: pixels in, one logit per tag out (before the sigmoid). One
// subclass per timm family (vit, eva02, swinv2, convnext), each with timm's parameter names so
// the hub's model.safetensors loads name for name; and the pieces they share.
#pragma once

#include <memory>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "caption/tagger_config.h"
#include "nn/layers.h"

namespace ls::caption {

class TaggerNet : public torch::nn::Module {
 public:
  /// pixels [B, 3, S, S] (normalised, BGR, S = config input size) -> logits [B, num_classes]
  virtual torch::Tensor forward(const torch::Tensor& pixels) = 0;
};

/// A learned tensor registered under `name`: torch::empty under nn::SkipInitGuard (about to be
/// loaded), else N(0, 0.02²) like timm's trunc_normal_ init (random-weight benchmarks).
torch::Tensor learned(torch::nn::Module& owner, const std::string& name, c10::IntArrayRef shape);

/// timm's act_layer names: "gelu" (erf) and "gelu_tanh".
torch::Tensor activation(const torch::Tensor& x, const std::string& act_layer);

/// timm's layers.Mlp: fc1 -> activation -> fc2.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden, std::string act_layer);
  torch::Tensor forward(const torch::Tensor& x);  // [..., dim] -> [..., dim]

  nn::Linear fc1{nullptr}, fc2{nullptr};

 private:
  std::string act_;
};
TORCH_MODULE(Mlp);

/// timm's layers.PatchEmbed without norm: a stride-`patch` convolution, "proj".
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t patch, int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);  // [B, 3, H, W] -> [B, H/p * W/p, dim]

  nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

}  // namespace ls::caption
