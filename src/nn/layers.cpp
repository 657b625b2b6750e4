#include "nn/layers.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "nn/functional.h"

namespace ls::nn {

namespace {
thread_local bool g_skip_init = false;

// torch.nn.Linear / Conv2d reset_parameters: kaiming_uniform_(a=sqrt(5)) gives
// bound = 1/sqrt(fan_in) for the weight too; the bias uses the same bound.
void init_uniform(torch::Tensor& t, int64_t fan_in) {
  if (g_skip_init) return;
  double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  torch::NoGradGuard no_grad;
  t.uniform_(-bound, bound);
}
}  // namespace

SkipInitGuard::SkipInitGuard() : previous_(g_skip_init) { g_skip_init = true; }
SkipInitGuard::~SkipInitGuard() { g_skip_init = previous_; }
bool SkipInitGuard::active() { return g_skip_init; }

torch::Tensor AdaptableLayer::apply_adapters(torch::Tensor y, const torch::Tensor& x) const {
  for (const auto& adapter : adapters_) y = y + adapter->delta(x);
  return y;
}

void AdaptableLayer::remove_adapter(const Adapter* adapter) {
  adapters_.erase(std::remove_if(adapters_.begin(), adapters_.end(),
                                 [&](const std::shared_ptr<Adapter>& a) { return a.get() == adapter; }),
                  adapters_.end());
}

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool has_bias) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  init_uniform(weight, in_features);
  if (has_bias) {
    bias = register_parameter("bias", torch::empty({out_features}));
    init_uniform(bias, in_features);
  }
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  return apply_adapters(torch::linear(x, weight, bias), x);
}

Conv2dImpl::Conv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
                       int64_t padding, bool has_bias)
    : stride_(stride), padding_(padding) {
  weight = register_parameter("weight", torch::empty({out_channels, in_channels, kernel, kernel}));
  int64_t fan_in = in_channels * kernel * kernel;
  init_uniform(weight, fan_in);
  if (has_bias) {
    bias = register_parameter("bias", torch::empty({out_channels}));
    init_uniform(bias, fan_in);
  }
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  auto y = nn::conv2d(x, weight, bias, stride_, padding_);
  return apply_adapters(y, x);
}

GroupNormImpl::GroupNormImpl(int64_t groups, int64_t channels, double eps, bool upcast)
    : groups_(groups), eps_(eps), upcast_(upcast) {
  weight = register_parameter("weight", g_skip_init ? torch::empty({channels}) : torch::ones({channels}));
  bias = register_parameter("bias", g_skip_init ? torch::empty({channels}) : torch::zeros({channels}));
}

torch::Tensor GroupNormImpl::forward(const torch::Tensor& x) {
  // Only half types are widened: float64 (gradient checks) must stay float64.
  if (upcast_ && (x.scalar_type() == torch::kHalf || x.scalar_type() == torch::kBFloat16)) {
    return torch::group_norm(x.to(torch::kFloat), groups_, weight.to(torch::kFloat),
                             bias.to(torch::kFloat), eps_)
        .to(x.scalar_type());
  }
  return torch::group_norm(x, groups_, weight, bias, eps_);
}

LayerNormImpl::LayerNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", g_skip_init ? torch::empty({dim}) : torch::ones({dim}));
  bias = register_parameter("bias", g_skip_init ? torch::empty({dim}) : torch::zeros({dim}));
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {weight.size(0)}, weight, bias, eps_);
}

}  // namespace ls::nn
