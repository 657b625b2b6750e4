#include "caption/tagger_net.h"

#include <torch/torch.h>


namespace ls::caption {

torch::Tensor learned(torch::nn::Module& owner, const std::string& name, c10::IntArrayRef shape) {
  auto t = torch::empty(shape);
  if (!nn::SkipInitGuard::active()) {
    torch::NoGradGuard no_grad;
    t.normal_(0.0, 0.02);
  }
  return owner.register_parameter(name, t);
}

torch::Tensor activation(const torch::Tensor& x, const std::string& act_layer) {
  return act_layer == "gelu_tanh" ? torch::gelu(x, "tanh") : torch::gelu(x);
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden, std::string act_layer) : act_(std::move(act_layer)) {
  fc1 = register_module("fc1", nn::Linear(dim, hidden));
  fc2 = register_module("fc2", nn::Linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return fc2(activation(fc1(x), act_)); }

PatchEmbedImpl::PatchEmbedImpl(int64_t patch, int64_t dim) {
  proj = register_module("proj", nn::Conv2d(3, dim, patch, patch));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  return proj(x).flatten(2).transpose(1, 2);  // [B, C, h, w] -> [B, h*w, C]
}

}  // namespace ls::caption
