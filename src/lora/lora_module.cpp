#include "lora/lora_module.h"

#include <algorithm>

#include <torch/torch.h>

#include "core/error.h"

namespace ls::lora {

int64_t LoraTarget::in_features() const { return conv ? conv->in_channels() : linear->in_features(); }
int64_t LoraTarget::out_features() const { return conv ? conv->out_channels() : linear->out_features(); }
torch::Tensor LoraTarget::weight() const { return conv ? conv->weight : linear->weight; }

void LoraTarget::add_adapter(std::shared_ptr<nn::Adapter> adapter) const {
  if (conv) conv.ptr()->add_adapter(std::move(adapter));
  else linear.ptr()->add_adapter(std::move(adapter));
}

void LoraTarget::remove_adapter(const nn::Adapter* adapter) const {
  if (conv) conv.ptr()->remove_adapter(adapter);
  else linear.ptr()->remove_adapter(adapter);
}

LoraModuleImpl::LoraModuleImpl(const LoraTarget& target, const LoraModuleOptions& options)
    : target_(target), options_(options), rank_(options.rank) {
  LS_CHECK(options.rank > 0, "LoRA rank must be positive, got ", options.rank);
  for (double p : {options.dropout, options.rank_dropout, options.module_dropout}) {
    LS_CHECK(p >= 0.0 && p < 1.0, "LoRA dropout probabilities must be in [0, 1), got ", p);
  }
  double alpha = options.alpha == 0.0 ? static_cast<double>(rank_) : options.alpha;
  alpha_ = register_buffer("alpha", torch::tensor(static_cast<float>(alpha)));
  int64_t in = target.in_features(), out = target.out_features();
  auto dtype = target.weight().scalar_type();
  auto device = target.weight().device();
  if (target.is_conv()) {
    const auto& c = target.conv;
    lora_down_conv = register_module("lora_down", nn::Conv2d(in, rank_, c->kernel(), c->stride(), c->padding(), false));
    lora_up_conv = register_module("lora_up", nn::Conv2d(rank_, out, 1, 1, 0, false));
  } else {
    lora_down_linear = register_module("lora_down", nn::Linear(in, rank_, false));
    lora_up_linear = register_module("lora_up", nn::Linear(rank_, out, false));
  }
  // Down keeps Linear/Conv2d's own Kaiming-uniform(a = sqrt 5) init; up starts at zero so a
  // fresh network leaves the model unchanged.
  torch::NoGradGuard no_grad;
  (target.is_conv() ? lora_up_conv->weight : lora_up_linear->weight).zero_();
  to(device, dtype);
}

torch::Tensor LoraModuleImpl::delta(const torch::Tensor& x) {
  bool conv = target_.is_conv();
  if (is_training() && options_.module_dropout > 0.0 &&
      torch::rand({1}).item<double>() < options_.module_dropout) {
    return torch::zeros({}, x.options());
  }
  // Mixed precision: the frozen base may run in fp16/bf16 while the LoRA is kept in float32;
  // the delta is then computed in the LoRA's dtype (autocast would use the lower one).
  const auto lora_dtype = (conv ? lora_down_conv->weight : lora_down_linear->weight).scalar_type();
  const torch::Tensor xin = x.scalar_type() == lora_dtype ? x : x.to(lora_dtype);
  auto lx = conv ? lora_down_conv->forward(xin) : lora_down_linear->forward(xin);
  double scale = this->scale();
  if (is_training() && options_.dropout > 0.0) lx = torch::dropout(lx, options_.dropout, true);
  if (is_training() && options_.rank_dropout > 0.0) {
    auto mask = (torch::rand({lx.size(0), rank_}, lx.options()) > options_.rank_dropout).to(lx.scalar_type());
    if (lx.dim() == 3) mask = mask.unsqueeze(1);                      // [B, 1, r] (tokens)
    else if (lx.dim() == 4) mask = mask.unsqueeze(-1).unsqueeze(-1);  // [B, r, 1, 1] (conv)
    lx = lx * mask;
    scale *= 1.0 / (1.0 - options_.rank_dropout);  // as if the rank had shrunk
  }
  auto up = conv ? lora_up_conv->forward(lx) : lora_up_linear->forward(lx);
  up = up * (multiplier_ * scale);
  return up.scalar_type() == x.scalar_type() ? up : up.to(x.scalar_type());
}

torch::Tensor LoraModuleImpl::weight_delta() const {
  double s = multiplier_ * scale();
  if (!target_.is_conv()) return torch::matmul(lora_up_linear->weight, lora_down_linear->weight) * s;
  auto down = lora_down_conv->weight;  // [r, in, k, k]
  auto up = lora_up_conv->weight.flatten(1);  // [out, r]
  auto w = torch::matmul(up, down.flatten(1));  // [out, in*k*k]
  return w.view({up.size(0), down.size(1), down.size(2), down.size(3)}) * s;
}

}  // namespace ls::lora
