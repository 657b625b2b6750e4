#include "lora/adapter_module.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "core/error.h"
#include "nn/functional.h"

namespace ls::lora {

const char* algo_name(Algo algo) {
  switch (algo) {
    case Algo::kLora: return "lora";
    case Algo::kLoha: return "loha";
    case Algo::kLokr: return "lokr";
  }
  return "";
}

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

std::vector<int64_t> dora_scale_shape(c10::IntArrayRef base, bool wd_on_out) {
  std::vector<int64_t> shape(base.size(), 1);
  if (wd_on_out) shape[0] = base[0];
  else shape[1] = base[1];
  return shape;
}

namespace {

// torch.finfo(dtype).eps.
double adapter_dtype_eps(c10::ScalarType t) {
  switch (t) {
    case torch::kDouble: return std::numeric_limits<double>::epsilon();
    case torch::kHalf: return 0.0009765625;
    case torch::kBFloat16: return 0.0078125;
    default: return std::numeric_limits<float>::epsilon();
  }
}

// The norm of W per output row (or per input column), shaped to broadcast against W.
torch::Tensor adapter_weight_norm(const torch::Tensor& w, bool wd_on_out) {
  std::vector<int64_t> shape(w.dim(), 1);
  torch::Tensor norm;
  if (wd_on_out) {
    shape[0] = w.size(0);
    norm = w.reshape({w.size(0), -1}).norm(2, {1});
  } else {
    shape[1] = w.size(1);
    norm = w.transpose(0, 1).reshape({w.size(1), -1}).norm(2, {1});
  }
  return norm.reshape(shape);
}

}  // namespace

AdapterModule::AdapterModule(const LoraTarget& target, const LoraModuleOptions& options)
    : target_(target), options_(options) {
  LS_CHECK(options.rank > 0, "LoRA rank must be positive, got ", options.rank);
  for (double p : {options.dropout, options.rank_dropout, options.module_dropout}) {
    LS_CHECK(p >= 0.0 && p < 1.0, "LoRA dropout probabilities must be in [0, 1), got ", p);
  }
  double alpha = options.alpha == 0.0 ? static_cast<double>(options.rank) : options.alpha;
  // lycoris' rs_lora divides by sqrt(rank) and stores alpha * rank / sqrt(rank), so a reader's
  // alpha / rank is the scale either way.
  if (options.rs_lora) alpha *= std::sqrt(static_cast<double>(options.rank));
  options_.alpha = alpha;
  alpha_ = register_buffer("alpha", torch::tensor(static_cast<float>(alpha)));
}

std::vector<torch::Tensor> AdapterModule::register_tensors(const TensorShapes& shapes) {
  std::vector<torch::Tensor> out;
  for (const auto& [name, shape] : shapes) out.push_back(register_parameter(name, torch::empty(shape, torch::kFloat)));
  return out;
}

void AdapterModule::finish() {
  const torch::Tensor base = target_.weight();
  if (options_.dora) {
    // The magnitude starts as the base weight's norms, so a fresh module changes nothing.
    torch::NoGradGuard no_grad;
    const torch::Tensor w = base.detach().to(torch::kCPU, torch::kFloat);
    dora_scale_ = register_parameter("dora_scale", adapter_weight_norm(w, options_.wd_on_out).contiguous());
    // A half-precision base (mixed-precision training) would round the magnitude before the
    // trainer makes the module float32 again, and a fresh DoRA would then rescale every row:
    // keep float32, as lycoris does (its dora_scale is made from the weight in float32).
    if (base.scalar_type() == torch::kHalf || base.scalar_type() == torch::kBFloat16) {
      to(base.device(), torch::kFloat);
      return;
    }
  }
  to(base.device(), base.scalar_type());
}

torch::Tensor AdapterModule::effective_delta(torch::Tensor diff) const {
  if (!options_.dora) return diff * multiplier_;
  // lycoris weight_decompose: W' = (W + dW) * m / |W + dW|, the change of scale interpolated by
  // the multiplier (dW itself is not: lycoris applies it whole and scales the magnitude part).
  const torch::Tensor w = target_.weight().detach().to(dora_scale_.scalar_type());
  const torch::Tensor merged = w + diff.to(dora_scale_.scalar_type());
  // lycoris functional/general.py _weight_decompose, with its epsilon of the magnitude's dtype.
  const double eps = adapter_dtype_eps(merged.scalar_type());
  torch::Tensor scale = dora_scale_ / (adapter_weight_norm(merged, options_.wd_on_out) + eps);
  if (multiplier_ != 1.0) scale = multiplier_ * (scale - 1) + 1;
  return merged * scale - w;
}

torch::Tensor AdapterModule::weight_delta() const { return effective_delta(diff_weight()); }

torch::Tensor AdapterModule::delta(const torch::Tensor& x) {
  if (is_training() && options_.module_dropout > 0.0 &&
      torch::rand({1}).item<double>() < options_.module_dropout) {
    return torch::zeros({}, x.options());
  }
  if (bypass()) return bypass_delta(x);
  torch::Tensor diff = diff_weight();
  if (is_training() && options_.rank_dropout > 0.0) {
    // lycoris: whole rows of the rebuilt delta dropped, optionally renormalised by the kept share.
    torch::Tensor keep = (torch::rand({diff.size(0)}) > options_.rank_dropout).to(diff.scalar_type());
    if (options_.rank_dropout_scale) keep = keep / keep.mean();
    std::vector<int64_t> shape(diff.dim(), 1);
    shape[0] = diff.size(0);
    diff = diff * keep.to(diff.device()).view(shape);
  }
  const torch::Tensor d = effective_delta(diff);
  // Mixed precision: the frozen base may run in fp16/bf16 while the adapter is float32; the delta
  // is computed in the adapter's dtype.
  const torch::Tensor xin = x.scalar_type() == d.scalar_type() ? x : x.to(d.scalar_type());
  torch::Tensor y = target_.is_conv()
                        ? nn::conv2d(xin, d, {}, target_.conv->stride(), target_.conv->padding())
                        : torch::linear(xin, d);
  return y.scalar_type() == x.scalar_type() ? y : y.to(x.scalar_type());
}

std::vector<std::pair<std::string, torch::Tensor>> AdapterModule::named_state() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& b : named_buffers()) out.emplace_back(b.key(), b.value());
  for (const auto& p : named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

}  // namespace ls::lora
