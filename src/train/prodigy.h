// Prodigy (Adam with a D-adapted step size) as a libtorch optimizer, with the semantics and float op
// order of PyPI prodigyopt 1.1.2 `prodigyopt/prodigy.py` — what kohya-ss sd-scripts builds for
// optimizer_type = "Prodigy" (library/train_util.py get_optimizer) — and kohya's optimizer_args
// parsing. Layout follows train/adafactor.h.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

namespace ls::train {

/// A group's settings, and the estimate prodigyopt keeps in every group's dict (d, d_max, ...).
/// As in prodigyopt, the step reads betas, beta3, use_bias_correction, decouple, d_coef,
/// growth_rate and the estimate from the first group only; lr, weight_decay, eps, d0,
/// safeguard_warmup and slice_p are read per group.
struct ProdigyOptions : public torch::optim::OptimizerCloneableOptions<ProdigyOptions> {
  ProdigyOptions() = default;
  /// libtorch's loader constructs options from a number; also handy for {lr}.
  explicit ProdigyOptions(double lr) : lr_(lr) {}
  /// Multiplies the adapted step size; kohya users pass learning_rate = 1. The schedule sets it.
  TORCH_ARG(double, lr) = 1.0;
  typedef std::tuple<double, double> betas_t;
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);  // beta1 = 0: no first moment
  TORCH_ARG(c10::optional<double>, beta3) = c10::nullopt;   // unset: sqrt(beta2)
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 0.0;
  TORCH_ARG(bool, decouple) = true;  // AdamW-style decay; false adds weight_decay * p to the gradient
  TORCH_ARG(bool, use_bias_correction) = false;
  TORCH_ARG(bool, safeguard_warmup) = false;  // leave the lr out of the d denominator
  TORCH_ARG(double, d0) = 1e-6;
  TORCH_ARG(double, d_coef) = 1.0;
  TORCH_ARG(double, growth_rate) = std::numeric_limits<double>::infinity();
  TORCH_ARG(int64_t, slice_p) = 1;  // statistics over every slice_p-th element only

  // The estimate (state, not settings; saved with the groups as prodigyopt's state_dict does).
  // d and d_max unset: the constructor fills them with its defaults' d0, as prodigyopt's do.
  TORCH_ARG(c10::optional<double>, d) = c10::nullopt;
  TORCH_ARG(c10::optional<double>, d_max) = c10::nullopt;
  TORCH_ARG(double, d_numerator) = 0.0;
  TORCH_ARG(int64_t, k) = 0;  // steps taken (a skipped step does not count)
  TORCH_ARG(c10::optional<double>, d_denom) = c10::nullopt;  // set by the first step taken
  TORCH_ARG(c10::optional<double>, d_hat) = c10::nullopt;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(const double lr) override;
};

/// Per-parameter state, in the parameter's dtype (prodigyopt computes in it: bf16 stays bf16).
struct ProdigyParamState : public torch::optim::OptimizerCloneableParamState<ProdigyParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, s);           // [ceil(numel / slice_p)]
  TORCH_ARG(torch::Tensor, p0);          // the sliced initial value, or a 0-d zero for an all-zero p
  TORCH_ARG(torch::Tensor, exp_avg);     // beta1 > 0: shape of p
  TORCH_ARG(torch::Tensor, exp_avg_sq);  // shape of p

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

/// The shared estimate after the last step (the first group's values, which every group holds).
struct ProdigyEstimate {
  double d = 0, d_max = 0, d_numerator = 0;
  int64_t k = 0;
  c10::optional<double> d_denom, d_hat;
};

class Prodigy : public torch::optim::Optimizer {
 public:
  /// Groups may carry their own ProdigyOptions (e.g. per-group weight_decay); groups without take
  /// `defaults`. Throws ls::Error on what prodigyopt refuses (d0, lr, eps <= 0; betas outside [0, 1)).
  explicit Prodigy(std::vector<torch::optim::OptimizerParamGroup> param_groups, ProdigyOptions defaults = {});
  explicit Prodigy(std::vector<torch::Tensor> params, ProdigyOptions defaults = {});

  /// One update of every parameter that has a gradient. Skipped as in prodigyopt (states made,
  /// nothing moved, k unchanged) while no group with lr > 0 has a non-zero gradient — e.g. the
  /// first step of a warmup. Group lrs must be equal, or 0 (such a group's moments stay frozen).
  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  /// p's state, or nullptr before p's first step.
  const ProdigyParamState* param_state(const torch::Tensor& p) const;
  ProdigyEstimate estimate() const;
};

/// Throws ls::Error unless prodigyopt would accept the options (plus slice_p >= 1).
void validate(const ProdigyOptions& options);

/// kohya's optimizer_args for Prodigy ("decouple=True weight_decay=0.01 d_coef=2
/// use_bias_correction=True safeguard_warmup=True betas=0.9,0.99 beta3=None ...") -> options on
/// prodigyopt's defaults. The lr is not an optimizer_arg (kohya passes learning_rate).
ProdigyOptions parse_prodigy_args(const std::vector<std::string>& optimizer_args);

}  // namespace ls::train
