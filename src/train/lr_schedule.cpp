// LR schedules: transformers' lambdas (src/transformers/optimization.py) with the arguments
// kohya-ss/sd-scripts library/train_util.py get_scheduler_fix passes them. Expressions keep
// Python's operation order so the doubles agree bit for bit.
#include "train/lr_schedule.h"

#include <cmath>

#include "core/error.h"

namespace ls::train {
namespace {

struct NamedKind {
  const char* name;
  LrScheduleKind kind;
};
constexpr NamedKind kKinds[] = {
    {"constant", LrScheduleKind::kConstant},
    {"constant_with_warmup", LrScheduleKind::kConstantWithWarmup},
    {"linear", LrScheduleKind::kLinear},
    {"cosine", LrScheduleKind::kCosine},
    {"cosine_with_restarts", LrScheduleKind::kCosineWithRestarts},
    {"polynomial", LrScheduleKind::kPolynomial},
    {"adafactor", LrScheduleKind::kAdafactor},
};

constexpr double kPi = 3.141592653589793;  // math.pi

// Linear warmup shared by every lambda: step / max(1, warmup).
double warmup(int64_t step, int64_t warmup_steps) {
  return double(step) / double(std::max<int64_t>(1, warmup_steps));
}

double progress(const LrScheduleOptions& o, int64_t step) {
  return double(step - o.warmup_steps) / double(std::max<int64_t>(1, o.total_steps - o.warmup_steps));
}

}  // namespace

LrScheduleKind parse_lr_schedule(const std::string& kohya_name) {
  std::string valid;
  for (const auto& k : kKinds) {
    if (kohya_name == k.name) return k.kind;
    valid += (valid.empty() ? "" : ", ") + std::string(k.name);
  }
  LS_FAIL("lr_scheduler: unknown schedule '", kohya_name, "'; valid: ", valid);
}

std::string lr_schedule_name(LrScheduleKind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  LS_FAIL("lr_scheduler: invalid LrScheduleKind ", static_cast<int>(kind));
}

LrScheduleKind effective_lr_schedule(LrScheduleKind requested, bool adafactor_relative_step) {
  return adafactor_relative_step ? LrScheduleKind::kAdafactor : requested;
}

void validate(const LrScheduleOptions& o, double lr_init) {
  const std::string name = lr_schedule_name(o.kind);
  LS_CHECK(o.warmup_steps >= 0, "lr_warmup_steps must be >= 0, got ", o.warmup_steps);
  LS_CHECK(o.total_steps >= 0, "lr schedule: total steps must be >= 0, got ", o.total_steps);
  // kohya's wrap_check_needless_num_warmup_steps.
  LS_CHECK(o.warmup_steps == 0 ||
               (o.kind != LrScheduleKind::kConstant && o.kind != LrScheduleKind::kAdafactor),
           "lr_scheduler=", name, " does not take lr_warmup_steps (got ", o.warmup_steps,
           "); set it to 0", o.kind == LrScheduleKind::kConstant ? " or use constant_with_warmup" : "");
  LS_CHECK(o.kind != LrScheduleKind::kCosineWithRestarts || o.num_cycles >= 1,
           "lr_scheduler_num_cycles must be >= 1, got ", o.num_cycles);
  if (o.kind == LrScheduleKind::kPolynomial) {
    LS_CHECK(lr_init > o.lr_end, "lr_scheduler=polynomial: lr_end (", o.lr_end,
             ") must be smaller than the initial lr (", lr_init, ")");
    LS_CHECK(o.total_steps > o.warmup_steps, "lr_scheduler=polynomial: total steps (", o.total_steps,
             ") must exceed lr_warmup_steps (", o.warmup_steps, ")");
    LS_CHECK(std::isfinite(o.power) && o.power >= 0, "lr_scheduler_power must be >= 0, got ", o.power);
  }
}

double lr_multiplier(const LrScheduleOptions& o, int64_t step, double lr_init) {
  LS_CHECK(step >= 0, "lr schedule: step must be >= 0, got ", step);
  switch (o.kind) {
    case LrScheduleKind::kConstant:
      return 1.0;
    case LrScheduleKind::kConstantWithWarmup:
      return step < o.warmup_steps ? warmup(step, o.warmup_steps) : 1.0;
    case LrScheduleKind::kLinear:
      if (step < o.warmup_steps) return warmup(step, o.warmup_steps);
      return std::max(0.0, double(o.total_steps - step) /
                               double(std::max<int64_t>(1, o.total_steps - o.warmup_steps)));
    case LrScheduleKind::kCosine: {
      if (step < o.warmup_steps) return warmup(step, o.warmup_steps);
      const double num_cycles = 0.5;
      double factor = 0.5 * (1.0 + std::cos(kPi * num_cycles * 2.0 * progress(o, step)));
      return std::max(0.0, factor);
    }
    case LrScheduleKind::kCosineWithRestarts: {
      if (step < o.warmup_steps) return warmup(step, o.warmup_steps);
      double p = progress(o, step);
      if (p >= 1.0) return 0.0;
      // Python's float % 1.0 equals fmod for the non-negative values here.
      return std::max(0.0, 0.5 * (1.0 + std::cos(kPi * std::fmod(double(o.num_cycles) * p, 1.0))));
    }
    case LrScheduleKind::kPolynomial: {
      if (step < o.warmup_steps) return warmup(step, o.warmup_steps);
      if (step > o.total_steps) return o.lr_end / lr_init;
      double lr_range = lr_init - o.lr_end;
      int64_t decay_steps = o.total_steps - o.warmup_steps;
      double pct_remaining = 1 - double(step - o.warmup_steps) / double(decay_steps);
      double decay = lr_range * std::pow(pct_remaining, o.power) + o.lr_end;
      return decay / lr_init;
    }
    case LrScheduleKind::kAdafactor:
      break;
  }
  LS_FAIL("lr_scheduler=adafactor has no multiplier: the lr comes from Adafactor itself");
}

LrScheduler::LrScheduler(torch::optim::Optimizer& optimizer, LrScheduleOptions options, std::vector<double> base_lrs,
                         double lr_init, OwnLr own)
    : optimizer_(optimizer), options_(options), base_lrs_(std::move(base_lrs)), lr_init_(lr_init), own_(std::move(own)) {
  validate(options_, lr_init_);
  LS_CHECK(base_lrs_.size() == optimizer_.param_groups().size(), "lr schedule: ", base_lrs_.size(),
           " base lrs for ", optimizer_.param_groups().size(), " parameter groups");
  const bool is_adafactor_schedule = options_.kind == LrScheduleKind::kAdafactor;
  LS_CHECK(!own_.groups.empty() || !is_adafactor_schedule,
           "lr_scheduler=adafactor must be used with optimizer_type=Adafactor");
  for (const bool relative : own_.groups) {
    LS_CHECK(relative || !is_adafactor_schedule,
             "lr_scheduler=adafactor needs Adafactor with relative_step=True; pick another "
             "lr_scheduler (e.g. constant_with_warmup) for relative_step=False");
    LS_CHECK(!relative || is_adafactor_schedule, "lr_scheduler=", lr_schedule_name(options_.kind),
             ": Adafactor with relative_step=True makes its own lr, so kohya uses lr_scheduler=adafactor");
  }
  apply();
}

namespace {
OwnLr own_lr_of(const torch::optim::Optimizer& optimizer) {
  const auto* own = dynamic_cast<const MakesOwnLr*>(&optimizer);
  return own ? own->own_lr() : OwnLr{};
}
}  // namespace

LrScheduler::LrScheduler(torch::optim::Optimizer& optimizer, LrScheduleOptions options, std::vector<double> base_lrs,
                         double lr_init)
    : LrScheduler(optimizer, std::move(options), std::move(base_lrs), lr_init, own_lr_of(optimizer)) {}

void LrScheduler::step() {
  ++last_step_;
  apply();
}

void LrScheduler::set_last_step(int64_t steps_taken) {
  LS_CHECK(steps_taken >= 0, "lr schedule: resumed step must be >= 0, got ", steps_taken);
  last_step_ = steps_taken;
  apply();
}

// Adafactor's relative step ignores the group lr, so the adafactor schedule leaves it alone.
void LrScheduler::apply() {
  if (options_.kind == LrScheduleKind::kAdafactor) return;
  const double m = lr_multiplier(options_, last_step_, lr_init_);
  auto& groups = optimizer_.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) groups[g].options().set_lr(base_lrs_[g] * m);
}

std::vector<double> LrScheduler::last_lrs() const {
  if (options_.kind == LrScheduleKind::kAdafactor) {
    // The constructor checked that the optimizer makes its own lr.
    const auto own = own_.lrs();
    std::vector<double> lrs;
    for (size_t g = 0; g < own.size(); ++g) lrs.push_back(own[g].value_or(base_lrs_[g]));
    return lrs;
  }
  std::vector<double> lrs;
  for (const auto& group : optimizer_.param_groups()) lrs.push_back(group.options().get_lr());
  return lrs;
}

}  // namespace ls::train
