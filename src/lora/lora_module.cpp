#include "lora/lora_module.h"

#include <torch/torch.h>

#include "core/error.h"

namespace ls::lora {

TensorShapes lora_tensor_shapes(c10::IntArrayRef base, const LoraModuleOptions& o) {
  std::vector<int64_t> down{o.rank, base[1]}, up{base[0], o.rank};
  if (base.size() == 4) {
    down.insert(down.end(), {base[2], base[3]});
    up.insert(up.end(), {1, 1});
  }
  return {{"lora_down.weight", down}, {"lora_up.weight", up}};
}

LoraModuleImpl::LoraModuleImpl(const LoraTarget& target, const LoraModuleOptions& options)
    : AdapterModule(target, options) {
  LS_CHECK(!options.tucker || !target.is_conv() || target.conv->kernel() == 1,
           "network_args use_tucker with algo=lora/locon (lycoris' lora_mid core) is not implemented; leave ",
           "use_tucker out, or use it with algo=loha or lokr");
  const int64_t in = target.in_features(), out = target.out_features(), rank = options.rank;
  if (target.is_conv()) {
    const auto& c = target.conv;
    lora_down_conv = register_module("lora_down", nn::Conv2d(in, rank, c->kernel(), c->stride(), c->padding(), false));
    lora_up_conv = register_module("lora_up", nn::Conv2d(rank, out, 1, 1, 0, false));
  } else {
    lora_down_linear = register_module("lora_down", nn::Linear(in, rank, false));
    lora_up_linear = register_module("lora_up", nn::Linear(rank, out, false));
  }
  // Down keeps Linear/Conv2d's own Kaiming-uniform(a = sqrt 5) init; up starts at zero so a
  // fresh network leaves the model unchanged.
  torch::NoGradGuard no_grad;
  up().zero_();
  finish();
}

torch::Tensor LoraModuleImpl::bypass_delta(const torch::Tensor& x) {
  const bool conv = target_.is_conv();
  const auto lora_dtype = down().scalar_type();
  const torch::Tensor xin = x.scalar_type() == lora_dtype ? x : x.to(lora_dtype);
  auto lx = conv ? lora_down_conv->forward(xin) : lora_down_linear->forward(xin);
  double scale = this->scale();
  if (is_training() && options_.dropout > 0.0) lx = torch::dropout(lx, options_.dropout, true);
  if (is_training() && options_.rank_dropout > 0.0) {
    const int64_t rank = options_.rank;
    auto mask = (torch::rand({lx.size(0), rank}, lx.options()) > options_.rank_dropout).to(lx.scalar_type());
    if (lx.dim() == 3) mask = mask.unsqueeze(1);                      // [B, 1, r] (tokens)
    else if (lx.dim() == 4) mask = mask.unsqueeze(-1).unsqueeze(-1);  // [B, r, 1, 1] (conv)
    lx = lx * mask;
    scale *= 1.0 / (1.0 - options_.rank_dropout);  // as if the rank had shrunk
  }
  auto y = conv ? lora_up_conv->forward(lx) : lora_up_linear->forward(lx);
  y = y * (multiplier_ * scale);
  return y.scalar_type() == x.scalar_type() ? y : y.to(x.scalar_type());
}

torch::Tensor LoraModuleImpl::diff_weight() const {
  const torch::Tensor d = down(), u = up().flatten(1);  // [r, in(, k, k)], [out, r]
  return torch::matmul(u, d.flatten(1)).view(target_.weight().sizes()) * scale();
}

}  // namespace ls::lora
