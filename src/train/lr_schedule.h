// Learning-rate schedules as kohya-ss/sd-scripts picks them (library/train_util.py
// get_scheduler_fix) from transformers' lambdas (src/transformers/optimization.py
// `_get_*_lr_lambda`, applied the way torch's LambdaLR does), and the `adafactor` proxy schedule
// (transformers AdafactorSchedule) that reports Adafactor's own relative-step lr.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

namespace ls::train {

enum class LrScheduleKind {
  kConstant,
  kConstantWithWarmup,
  kLinear,
  kCosine,              // half a cosine (transformers' num_cycles=0.5; kohya passes none)
  kCosineWithRestarts,  // hard restarts, num_cycles = kohya's lr_scheduler_num_cycles
  kPolynomial,
  kAdafactor,           // the optimizer's own lr (Adafactor with relative_step=True)
};

/// kohya's --lr_scheduler names: constant, constant_with_warmup, linear, cosine,
/// cosine_with_restarts, polynomial, adafactor. Anything else is an ls::Error listing these.
LrScheduleKind parse_lr_schedule(const std::string& kohya_name);
std::string lr_schedule_name(LrScheduleKind kind);

/// kohya's get_optimizer: Adafactor with relative_step=True replaces whatever schedule was asked
/// for with `adafactor` (learning_rate becoming its initial_lr, per-group lrs ignored).
LrScheduleKind effective_lr_schedule(LrScheduleKind requested, bool adafactor_relative_step);

struct LrScheduleOptions {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  int64_t warmup_steps = 0;  // kohya lr_warmup_steps
  int64_t total_steps = 0;   // kohya max_train_steps * processes
  int num_cycles = 1;        // kohya lr_scheduler_num_cycles (cosine_with_restarts only)
  double power = 1.0;        // kohya lr_scheduler_power (polynomial only)
  double lr_end = 1e-7;      // polynomial's final lr (kohya keeps transformers' default)
};

/// Throws ls::Error for what kohya/transformers refuse: warmup with constant or adafactor,
/// polynomial with lr_end >= lr_init or no decay steps, negative counts, num_cycles < 1.
void validate(const LrScheduleOptions& o, double lr_init);

/// transformers' lambda (multiplier of the base lr) after `step` optimizer steps, in double;
/// lr_init is the optimizer's default lr (only polynomial uses it). Not defined for kAdafactor.
double lr_multiplier(const LrScheduleOptions& o, int64_t step, double lr_init);

/// An optimizer that makes its own lr per group (Adafactor's relative step), as the schedule's
/// input: the adafactor schedule reports that lr, every other schedule refuses such groups.
struct OwnLr {
  std::vector<bool> groups;  // per param group: the optimizer makes its lr; empty = none does
  /// The lr each group used in its last step, nullopt before its first.
  std::function<std::vector<std::optional<double>>()> lrs;
};

/// Optimizers that can make their own lr say so through this interface (Adafactor does). Prodigy
/// does not: its d multiplies the group lr this schedule sets, as AdamW's lr is set.
class MakesOwnLr {
 public:
  virtual ~MakesOwnLr() = default;
  virtual OwnLr own_lr() const = 0;
};

/// torch LambdaLR over an optimizer's param groups: group g gets base_lrs[g] * multiplier(step)
/// for optimizer step `step`. With kAdafactor it sets nothing and reports Adafactor's lrs.
class LrScheduler {
 public:
  /// base_lrs: one per param group (kohya: unet_lr / text_encoder_lr or learning_rate; for
  /// kAdafactor the initial_lr reported until the group steps). lr_init: learning_rate.
  /// Applies step 0's lrs, as LambdaLR's constructor does.
  LrScheduler(torch::optim::Optimizer& optimizer, LrScheduleOptions options, std::vector<double> base_lrs,
              double lr_init, OwnLr own);
  /// The same, with `own` from the optimizer when it is a MakesOwnLr (else none).
  LrScheduler(torch::optim::Optimizer& optimizer, LrScheduleOptions options, std::vector<double> base_lrs,
              double lr_init);

  /// After each optimizer.step(): one more step taken; set the lrs for the next one.
  void step();
  /// Resume: `steps_taken` optimizer steps are done; set the lrs for the next one.
  void set_last_step(int64_t steps_taken);
  int64_t last_step() const { return last_step_; }
  /// LambdaLR.get_last_lr(): per group, the lr in effect (kAdafactor: Adafactor::group_lrs).
  std::vector<double> last_lrs() const;
  const LrScheduleOptions& options() const { return options_; }

 private:
  void apply();

  torch::optim::Optimizer& optimizer_;
  LrScheduleOptions options_;
  std::vector<double> base_lrs_;
  double lr_init_;
  OwnLr own_;
  int64_t last_step_ = 0;
};

}  // namespace ls::train
