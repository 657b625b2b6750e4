// LR schedules against transformers' lambdas (fixtures/lr_schedules.json), the LambdaLR-style
// scheduler over param groups (incl. resume), the adafactor proxy schedule, and kohya's checks.
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "support/support.h"
#include "train/adafactor.h"
#include "train/lr_schedule.h"

namespace {

using ls::train::LrScheduleKind;
using ls::train::LrScheduleOptions;

nlohmann::json load_fixture() {
  std::ifstream in(std::string(ls::test::kFixturesDir) + "/lr_schedules.json");
  EXPECT_TRUE(in.good());
  return nlohmann::json::parse(in);
}

// Fixture entries are named after transformers' functions; kohya names the hard-restart one
// cosine_with_restarts and passes lr_scheduler_num_cycles as its num_cycles.
LrScheduleOptions options_for(const std::string& fixture_name, const nlohmann::json& kwargs) {
  LrScheduleOptions o;
  o.kind = ls::train::parse_lr_schedule(fixture_name == "cosine_with_hard_restarts" ? "cosine_with_restarts"
                                                                                      : fixture_name);
  o.warmup_steps = kwargs.value("num_warmup_steps", 0);
  o.total_steps = kwargs.value("num_training_steps", 0);
  if (o.kind == LrScheduleKind::kCosineWithRestarts) o.num_cycles = kwargs.at("num_cycles").get<int>();
  if (o.kind == LrScheduleKind::kCosine) {
    EXPECT_EQ(kwargs.at("num_cycles").get<double>(), 0.5);
  }
  o.power = kwargs.value("power", 1.0);
  o.lr_end = kwargs.value("lr_end", 1e-7);
  return o;
}

bool close(double actual, double expected, double rel) {
  return std::abs(actual - expected) <= rel * std::abs(expected);  // exact when expected is 0
}

TEST(LrSchedule, MultipliersAndLrsMatchTransformers) {
  nlohmann::json fx = load_fixture();
  const double base_lr = fx.at("base_lr").get<double>();
  const auto steps = fx.at("steps").get<std::vector<int64_t>>();
  const auto extra_steps = fx.at("extra_steps").get<std::vector<int64_t>>();
  size_t checked = 0;
  for (const auto& [name, sched] : fx.at("schedules").items()) {
    SCOPED_TRACE(name);
    LrScheduleOptions o = options_for(name, sched.at("kwargs"));
    const double lr_init = sched.value("lr_init", base_lr);
    ls::train::validate(o, lr_init);
    const auto mult = sched.at("multiplier").get<std::vector<double>>();
    const auto lr = sched.at("lr").get<std::vector<double>>();
    const auto extra = sched.at("extra_multiplier").get<std::vector<double>>();
    ASSERT_EQ(mult.size(), steps.size());
    double worst = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
      double m = ls::train::lr_multiplier(o, steps[i], lr_init);
      EXPECT_TRUE(close(m, mult[i], 1e-12)) << "step " << steps[i] << ": " << m << " vs " << mult[i];
      EXPECT_TRUE(close(base_lr * m, lr[i], 1e-12)) << "lr at step " << steps[i];
      if (mult[i] != 0) worst = std::max(worst, std::abs(m - mult[i]) / std::abs(mult[i]));
      ++checked;
    }
    for (size_t i = 0; i < extra_steps.size(); ++i) {
      double m = ls::train::lr_multiplier(o, extra_steps[i], lr_init);
      EXPECT_TRUE(close(m, extra[i], 1e-12)) << "past the end, step " << extra_steps[i];
      ++checked;
    }
    std::printf("lr schedule %s: max rel err %.3g\n", name.c_str(), worst);
  }
  EXPECT_EQ(checked, 6u * (100 + 3));
}

// The scheduler sets base_lr[g] * multiplier in every group for the next optimizer step, as
// LambdaLR stepped after each optimizer step does; resuming at step k gives the same lrs.
TEST(LrSchedule, SchedulerDrivesParamGroupsAndResumes) {
  auto a = torch::zeros({2}, torch::requires_grad());
  auto b = torch::zeros({2}, torch::requires_grad());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{a});
  groups.emplace_back(std::vector<torch::Tensor>{b}, std::make_unique<torch::optim::SGDOptions>(1.0));
  torch::optim::SGD sgd(std::move(groups), torch::optim::SGDOptions(1.0));
  LrScheduleOptions o;
  o.kind = LrScheduleKind::kCosineWithRestarts;
  o.warmup_steps = 5;
  o.total_steps = 40;
  o.num_cycles = 2;
  const std::vector<double> base = {1e-4, 5e-5};
  ls::train::LrScheduler sched(sgd, o, base, 1e-4);
  std::vector<std::vector<double>> seen;
  for (int s = 0; s <= 45; ++s) {
    std::vector<double> lrs = sched.last_lrs();
    for (size_t g = 0; g < 2; ++g) {
      EXPECT_EQ(lrs[g], base[g] * ls::train::lr_multiplier(o, s, 1e-4)) << "step " << s;
      EXPECT_EQ(sgd.param_groups()[g].options().get_lr(), lrs[g]);
    }
    seen.push_back(lrs);
    sched.step();
  }
  EXPECT_EQ(seen[0][0], 0.0);          // warmup starts at lr 0
  EXPECT_EQ(seen[5][0], 1e-4);         // end of warmup: the base lr
  EXPECT_EQ(seen[40][1], 0.0);         // progress 1: hard-restart cosine is done
  EXPECT_GT(seen[23][0], seen[22][0]);  // the restart half way through the decay
  ls::train::LrScheduler resumed(sgd, o, base, 1e-4);
  resumed.set_last_step(17);
  EXPECT_EQ(resumed.last_lrs(), seen[17]);
  EXPECT_EQ(resumed.last_step(), 17);
}

// kohya + transformers: with relative_step the adafactor schedule reports initial_lr until the
// group's first parameter has stepped, then the lr Adafactor computed for it.
TEST(LrSchedule, AdafactorScheduleReportsTheOptimizersLr) {
  auto w = torch::full({4, 4}, 0.5, torch::requires_grad());
  auto v = torch::full({3}, 0.5, torch::requires_grad());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{w});
  groups.emplace_back(std::vector<torch::Tensor>{v});
  ls::train::Adafactor opt(std::move(groups));
  LrScheduleOptions o;
  o.kind = LrScheduleKind::kAdafactor;
  ls::train::LrScheduler sched(opt, o, {3e-4, 3e-4}, 3e-4);
  EXPECT_EQ(sched.last_lrs(), (std::vector<double>{3e-4, 3e-4}));
  w.mutable_grad() = torch::ones({4, 4});
  opt.step();
  sched.step();
  // step 1: RMS(w) = 0.5 > eps; lr = RMS * min(1e-2, 1/sqrt(1)), a float32 product in transformers
  EXPECT_EQ(sched.last_lrs(), (std::vector<double>{0.5 * double(0.01f), 3e-4}));

  torch::optim::SGD sgd({v}, torch::optim::SGDOptions(0.1));
  EXPECT_THROW(ls::train::LrScheduler(sgd, o, {0.1}, 0.1), ls::Error);
  ls::train::Adafactor manual({w}, ls::train::AdafactorOptions(1e-4).relative_step(false));
  EXPECT_THROW(ls::train::LrScheduler(manual, o, {1e-4}, 1e-4), ls::Error);
  EXPECT_THROW(ls::train::lr_multiplier(o, 0, 1e-4), ls::Error);
  LrScheduleOptions cosine;
  cosine.kind = LrScheduleKind::kCosine;
  cosine.total_steps = 10;
  EXPECT_THROW(ls::train::LrScheduler(opt, cosine, {3e-4, 3e-4}, 3e-4), ls::Error);  // relative step
}

TEST(LrSchedule, KohyaNamesAndChecks) {
  const std::vector<std::pair<std::string, LrScheduleKind>> names = {
      {"constant", LrScheduleKind::kConstant},
      {"constant_with_warmup", LrScheduleKind::kConstantWithWarmup},
      {"linear", LrScheduleKind::kLinear},
      {"cosine", LrScheduleKind::kCosine},
      {"cosine_with_restarts", LrScheduleKind::kCosineWithRestarts},
      {"polynomial", LrScheduleKind::kPolynomial},
      {"adafactor", LrScheduleKind::kAdafactor}};
  for (const auto& [name, kind] : names) {
    EXPECT_EQ(ls::train::parse_lr_schedule(name), kind);
    EXPECT_EQ(ls::train::lr_schedule_name(kind), name);
  }
  try {
    ls::train::parse_lr_schedule("cosine_annealing");
    ADD_FAILURE() << "unknown name accepted";
  } catch (const ls::Error& e) {
    EXPECT_STREQ(e.what(),
                 "lr_scheduler: unknown schedule 'cosine_annealing'; valid: constant, constant_with_warmup, "
                 "linear, cosine, cosine_with_restarts, polynomial, adafactor");
  }
  EXPECT_EQ(ls::train::effective_lr_schedule(LrScheduleKind::kCosine, true), LrScheduleKind::kAdafactor);
  EXPECT_EQ(ls::train::effective_lr_schedule(LrScheduleKind::kCosine, false), LrScheduleKind::kCosine);

  LrScheduleOptions o;
  o.kind = LrScheduleKind::kConstant;
  o.warmup_steps = 10;
  EXPECT_THROW(ls::train::validate(o, 1e-4), ls::Error);  // kohya: constant takes no warmup
  o.kind = LrScheduleKind::kPolynomial;
  o.total_steps = 100;
  o.lr_end = 1e-3;
  EXPECT_THROW(ls::train::validate(o, 1e-4), ls::Error);  // lr_end must be below lr_init
  o.lr_end = 1e-7;
  EXPECT_NO_THROW(ls::train::validate(o, 1e-4));
  o.kind = LrScheduleKind::kCosineWithRestarts;
  o.num_cycles = 0;
  EXPECT_THROW(ls::train::validate(o, 1e-4), ls::Error);
}

}  // namespace
