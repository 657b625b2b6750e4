#include "caption/convnext.h"

#include <torch/torch.h>

namespace ls::caption {

LayerNorm2dImpl::LayerNorm2dImpl(int64_t channels) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
}

torch::Tensor LayerNorm2dImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x.permute({0, 2, 3, 1}), {weight.size(0)}, weight, bias, 1e-6).permute({0, 3, 1, 2});
}

ConvNextBlockImpl::ConvNextBlockImpl(int64_t dim, const std::string& act_layer) {
  auto conv_dw = register_module("conv_dw", std::make_shared<torch::nn::Module>());
  conv_dw_weight = learned(*conv_dw, "weight", {dim, 1, 7, 7});
  conv_dw_bias = learned(*conv_dw, "bias", {dim});
  norm = register_module("norm", nn::LayerNorm(dim, 1e-6));
  mlp = register_module("mlp", Mlp(dim, 4 * dim, act_layer));
  gamma = register_parameter("gamma", torch::full({dim}, 1e-6));  // timm's ls_init_value
}

torch::Tensor ConvNextBlockImpl::forward(const torch::Tensor& x) {
  auto h = torch::conv2d(x, conv_dw_weight, conv_dw_bias, 1, 3, 1, x.size(1));  // depthwise 7x7
  h = mlp(norm(h.permute({0, 2, 3, 1}))).permute({0, 3, 1, 2});
  return x + h * gamma.view({1, -1, 1, 1});
}

ConvNextNet::ConvNextNet(const TaggerConfig& config) : config_(config) {
  const auto& c = config_;
  stem_ = register_module("stem", torch::nn::Sequential());
  stem_->push_back("0", nn::Conv2d(3, c.dims[0], 4, 4));
  stem_->push_back("1", LayerNorm2d(c.dims[0]));
  stages_ = register_module("stages", torch::nn::ModuleList());
  for (size_t i = 0; i < c.dims.size(); ++i) {
    auto stage = std::make_shared<torch::nn::Module>();
    if (i > 0) {
      auto down = stage->register_module("downsample", torch::nn::Sequential());
      down->push_back("0", LayerNorm2d(c.dims[i - 1]));
      down->push_back("1", nn::Conv2d(c.dims[i - 1], c.dims[i], 2, 2));
    }
    auto blocks = stage->register_module("blocks", torch::nn::Sequential());
    for (int64_t j = 0; j < c.depths[i]; ++j) blocks->push_back(ConvNextBlock(c.dims[i], c.act_layer));
    stages_->push_back(stage);
  }
  auto head = register_module("head", std::make_shared<torch::nn::Module>());
  head_norm_ = head->register_module("norm", LayerNorm2d(c.dims.back()));
  head_fc_ = head->register_module("fc", nn::Linear(c.dims.back(), c.num_classes));
}

torch::Tensor ConvNextNet::forward(const torch::Tensor& pixels) {
  auto x = stem_->forward(pixels);  // [B, C0, S/4, S/4]
  for (auto& stage : *stages_) {
    auto children = stage->named_children();
    if (auto* down = children.find("downsample")) x = (*down)->as<torch::nn::Sequential>()->forward(x);
    x = (*children.find("blocks"))->as<torch::nn::Sequential>()->forward(x);
  }
  x = head_norm_(x.mean({2, 3}, true));  // [B, C, 1, 1]
  return head_fc_(x.flatten(1));
}

}  // namespace ls::caption
