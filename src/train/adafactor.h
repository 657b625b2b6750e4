// Adafactor as a libtorch optimizer, with the exact semantics (and float op order) of
// huggingface/transformers src/transformers/optimization.py `Adafactor` — the optimizer kohya-ss
// sd-scripts instantiates for --optimizer_type Adafactor — and kohya's optimizer_args parsing
// (library/train_util.py get_optimizer). Layout follows libtorch's torch/optim/adamw.h.
#pragma once

#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

#include "train/lr_schedule.h"

namespace ls::train {

struct AdafactorOptions : public torch::optim::OptimizerCloneableOptions<AdafactorOptions> {
  AdafactorOptions() = default;
  /// libtorch's loader constructs options from a number; also handy for {lr}.
  explicit AdafactorOptions(c10::optional<double> lr) : lr_(lr) {}
  /// External lr; must be unset with relative_step (the optimizer then makes its own).
  TORCH_ARG(c10::optional<double>, lr) = c10::nullopt;
  /// (eps[0] added to grad², eps[1] floor of the parameter RMS when scale_parameter)
  typedef std::tuple<double, double> eps_t;
  TORCH_ARG(eps_t, eps) = std::make_tuple(1e-30, 1e-3);
  TORCH_ARG(double, clip_threshold) = 1.0;
  TORCH_ARG(double, decay_rate) = -0.8;
  TORCH_ARG(c10::optional<double>, beta1) = c10::nullopt;  // set: keep a first moment
  TORCH_ARG(double, weight_decay) = 0.0;
  TORCH_ARG(bool, scale_parameter) = true;
  TORCH_ARG(bool, relative_step) = true;
  TORCH_ARG(bool, warmup_init) = false;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  /// The external lr (0 when unset); with relative_step it is ignored, as in transformers.
  double get_lr() const override;
  void set_lr(const double lr) override;
};

/// Per-parameter state. Tensors are in the gradient's compute dtype (float32 for fp16/bf16
/// parameters, as transformers upcasts); only the ones the options need are defined.
struct AdafactorParamState
    : public torch::optim::OptimizerCloneableParamState<AdafactorParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, exp_avg);         // beta1 set: shape of p
  TORCH_ARG(torch::Tensor, exp_avg_sq_row);  // p.dim() >= 2: shape[:-1]
  TORCH_ARG(torch::Tensor, exp_avg_sq_col);  // p.dim() >= 2: shape[:-2] + shape[-1:]
  TORCH_ARG(torch::Tensor, exp_avg_sq);      // p.dim() < 2: shape of p
  TORCH_ARG(double, rms) = 0.0;              // RMS(p) before the last update (transformers "RMS")
  TORCH_ARG(double, lr) = 0.0;               // effective lr of the last step (_get_lr)

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

class Adafactor : public torch::optim::Optimizer, public MakesOwnLr {
 public:
  /// Each group may carry its own AdafactorOptions (e.g. UNet and text-encoder lrs); groups
  /// without options take `defaults`. Throws ls::Error on transformers' invalid combinations.
  explicit Adafactor(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                     AdafactorOptions defaults = {});
  explicit Adafactor(std::vector<torch::Tensor> params, AdafactorOptions defaults = {});

  /// One update of every parameter that has a gradient; the others are skipped and keep no state.
  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  /// p's state, or nullptr before p's first step.
  const AdafactorParamState* param_state(const torch::Tensor& p) const;
  /// transformers' AdafactorSchedule.get_lr: per group, the lr its first parameter used in its
  /// last step (nullopt while it has not stepped: the schedule then reports its initial_lr).
  std::vector<c10::optional<double>> group_lrs() const;
  /// Per group relative_step, and group_lrs: what the lr schedule needs to know.
  OwnLr own_lr() const override;

 private:
  void step_param(torch::Tensor& p, const AdafactorOptions& options);
};

/// Throws ls::Error unless the options are a combination transformers accepts (plus range checks).
void validate(const AdafactorOptions& options);

/// kohya's optimizer_args for Adafactor ("scale_parameter=False relative_step=False
/// warmup_init=False weight_decay=0.01 beta1=0.9 eps=1e-30,1e-3") -> options, with kohya's
/// fix-ups: relative_step defaults to True, and warmup_init=True turns relative_step on. The lr is
/// left unset: the trainer sets it when relative_step is off (learning_rate or per-group lrs).
AdafactorOptions parse_adafactor_args(const std::vector<std::string>& optimizer_args);

}  // namespace ls::train
