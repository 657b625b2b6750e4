// timm's ConvNeXt (timm/models/convnext.py), the base of wd-convnext-tagger-v3: a 4x4 stride-4
// stem with a channels LayerNorm, stages of blocks (7x7 depthwise conv, LayerNorm, MLP 4x, layer
// scale "gamma", residual) with a LayerNorm + 2x2 stride-2 conv between stages, then average
// pooling, LayerNorm and head.fc (NormMlpClassifierHead). LayerNorm eps 1e-6 throughout.
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include "caption/tagger_net.h"

namespace ls::caption {

/// LayerNorm over the channels of [B, C, H, W] (timm's LayerNorm2d).
class LayerNorm2dImpl : public torch::nn::Module {
 public:
  explicit LayerNorm2dImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight, bias;  // [C]
};
TORCH_MODULE(LayerNorm2d);

class ConvNextBlockImpl : public torch::nn::Module {
 public:
  ConvNextBlockImpl(int64_t dim, const std::string& act_layer);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, H, W] -> same

  torch::Tensor conv_dw_weight, conv_dw_bias, gamma;  // "conv_dw.weight" [C, 1, 7, 7], "conv_dw.bias", "gamma"
  nn::LayerNorm norm{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(ConvNextBlock);

class ConvNextNet : public TaggerNet {
 public:
  explicit ConvNextNet(const TaggerConfig& config);
  torch::Tensor forward(const torch::Tensor& pixels) override;

 private:
  TaggerConfig config_;
  torch::nn::Sequential stem_{nullptr};
  torch::nn::ModuleList stages_;
  LayerNorm2d head_norm_{nullptr};
  nn::Linear head_fc_{nullptr};
};

}  // namespace ls::caption
