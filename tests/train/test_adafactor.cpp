// Adafactor against transformers' own numbers (fixtures/adafactor.safetensors, cases a..e),
// bit-exact save/resume, fp16/bf16 upcasting, validation and kohya optimizer_args parsing.
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "io/safetensors.h"
#include "support/support.h"
#include "train/adafactor.h"
#include "train/lr_schedule.h"

namespace {

using ls::train::Adafactor;
using ls::train::AdafactorOptions;

const std::vector<std::string> kParams = {"w2d", "b1d", "conv4d"};
constexpr int kSteps = 6;

struct Case {
  std::string name;
  AdafactorOptions options;
  double param_atol;  // fixtures/README.md "suggested param check"
  bool schedule;      // kohya attaches AdafactorSchedule(opt, 1e-4) (relative_step)
};

std::vector<Case> fixture_cases() {
  AdafactorOptions b;
  b.lr(1e-4).scale_parameter(false).relative_step(false).warmup_init(false).weight_decay(0);
  AdafactorOptions c;
  c.warmup_init(true);
  return {
      {"a", AdafactorOptions{}, 2e-7, true},
      {"b", b, 2e-7, false},
      {"c", c, 2e-7, true},
      {"d", AdafactorOptions(b).weight_decay(0.01), 4e-7, false},
      {"e", AdafactorOptions(b).beta1(0.9), 2e-7, false},
  };
}

double rel(double actual, double expected) { return std::abs(actual - expected) / std::abs(expected); }

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

struct Trajectory {
  std::vector<torch::Tensor> params;
  std::unique_ptr<Adafactor> opt;
  std::unique_ptr<ls::train::LrScheduler> schedule;
};

Trajectory start(const ls::io::SafetensorsReader& fx, const Case& c, torch::Dtype dtype) {
  Trajectory run;
  for (const auto& name : kParams) {
    run.params.push_back(fx.load("init/" + name).to(dtype).set_requires_grad(true));
  }
  run.opt = std::make_unique<Adafactor>(run.params, c.options);
  if (c.schedule) {
    ls::train::LrScheduleOptions so;
    so.kind = ls::train::LrScheduleKind::kAdafactor;
    run.schedule = std::make_unique<ls::train::LrScheduler>(*run.opt, so, std::vector<double>{1e-4}, 1e-4);
  }
  return run;
}

void feed_grads(const ls::io::SafetensorsReader& fx, Trajectory& run, int k) {
  for (size_t i = 0; i < kParams.size(); ++i) {
    run.params[i].mutable_grad() = fx.load("grads/" + kParams[i])[k].to(run.params[i].scalar_type());
  }
}

class AdafactorFixture : public ::testing::Test {
 protected:
  ls::io::SafetensorsReader fx{std::string(ls::test::kFixturesDir) + "/adafactor.safetensors"};
};

// float32 run: parameters within the README's tolerance at every step, lr/RMS/schedule lr
// and the moment states close to transformers' float32 values.
TEST_F(AdafactorFixture, GoldenFloat32MatchesTransformers) {
  for (const Case& c : fixture_cases()) {
    SCOPED_TRACE("case " + c.name);
    Trajectory run = start(fx, c, torch::kFloat);
    double worst_param = 0, worst_lr = 0, worst_rms = 0, worst_state = 0, worst_sched = 0;
    for (int k = 0; k < kSteps; ++k) {
      feed_grads(fx, run, k);
      run.opt->step();
      if (run.schedule) run.schedule->step();
      for (size_t i = 0; i < kParams.size(); ++i) {
        const std::string& n = kParams[i];
        const std::string pre = c.name + "/";
        worst_param = std::max(worst_param, max_abs(run.params[i], fx.load(pre + "param/" + n)[k]));
        const auto* s = run.opt->param_state(run.params[i]);
        ASSERT_NE(s, nullptr);
        EXPECT_EQ(s->step(), k + 1);
        worst_lr = std::max(worst_lr, rel(s->lr(), fx.load(pre + "lr/" + n)[k].item<double>()));
        worst_rms = std::max(worst_rms, rel(s->rms(), fx.load(pre + "rms/" + n)[k].item<double>()));
        std::vector<std::pair<std::string, torch::Tensor>> states;
        if (n == "b1d") {
          states.emplace_back("exp_avg_sq", s->exp_avg_sq());
          EXPECT_FALSE(s->exp_avg_sq_row().defined());
        } else {
          states.emplace_back("exp_avg_sq_row", s->exp_avg_sq_row());
          states.emplace_back("exp_avg_sq_col", s->exp_avg_sq_col());
          EXPECT_FALSE(s->exp_avg_sq().defined());
        }
        if (c.name == "e") states.emplace_back("exp_avg", s->exp_avg());
        EXPECT_EQ(s->exp_avg().defined(), c.name == "e");
        for (const auto& [key, actual] : states) {
          torch::Tensor expected = fx.load(pre + "state/" + n + "/" + key)[k];
          ASSERT_EQ(actual.sizes(), expected.sizes()) << key;
          worst_state = std::max(worst_state, ls::test::norm_rel_error(actual, expected));
        }
      }
      if (run.schedule) {
        double expected = fx.load(c.name + "/schedule_lr")[k].item<double>();
        worst_sched = std::max(worst_sched, rel(run.schedule->last_lrs()[0], expected));
      }
    }
    std::printf("adafactor f32 case %s: param max abs %.3g, lr rel %.3g, rms rel %.3g, state rel %.3g, schedule rel %.3g\n",
                c.name.c_str(), worst_param, worst_lr, worst_rms, worst_state, worst_sched);
    EXPECT_LE(worst_param, c.param_atol);
    EXPECT_LE(worst_lr, 1e-6);
    EXPECT_LE(worst_rms, 1e-6);
    EXPECT_LE(worst_state, 1e-5);
    EXPECT_LE(worst_sched, 1e-6);
  }
}

// float64 run: each step's change against the fixture's float64 re-run of transformers
// (delta_f64), which checks the update itself also where float32 cannot resolve it (case c).
TEST_F(AdafactorFixture, GoldenFloat64UpdatesMatchTransformers) {
  for (const Case& c : fixture_cases()) {
    SCOPED_TRACE("case " + c.name);
    Trajectory run = start(fx, c, torch::kDouble);
    double worst = 0;
    for (int k = 0; k < kSteps; ++k) {
      std::vector<torch::Tensor> before;
      for (auto& p : run.params) before.push_back(p.detach().clone());
      feed_grads(fx, run, k);
      run.opt->step();
      for (size_t i = 0; i < kParams.size(); ++i) {
        torch::Tensor expected = fx.load(c.name + "/delta_f64/" + kParams[i])[k];
        torch::Tensor actual = run.params[i].detach() - before[i];
        worst = std::max(worst, ls::test::norm_rel_error(actual, expected));
      }
    }
    std::printf("adafactor f64 case %s: update rel err %.3g\n", c.name.c_str(), worst);
    EXPECT_LE(worst, 1e-12);
  }
}

// Two groups (relative-step defaults; manual lr with beta1 and weight decay), a parameter
// without gradient, N steps, save, load into a fresh optimizer: N more steps equal 2N straight.
TEST(Adafactor, ResumeIsBitExact) {
  constexpr int kN = 3;
  torch::manual_seed(7);
  std::vector<torch::Tensor> init = {torch::randn({6, 5}), torch::randn({5}), torch::randn({3, 2, 4}),
                                     torch::randn({4, 4}), torch::randn({4})};
  std::vector<std::vector<torch::Tensor>> grads(2 * kN);
  for (auto& g : grads) {
    for (const auto& p : init) g.push_back(torch::randn(p.sizes()) * 0.01);
  }
  auto make = [&](const std::vector<torch::Tensor>& values) {
    std::vector<torch::Tensor> ps;
    for (const auto& v : values) ps.push_back(v.clone().set_requires_grad(true));
    return ps;
  };
  AdafactorOptions te;
  te.relative_step(false).scale_parameter(false).lr(5e-5).beta1(0.9).weight_decay(0.01);
  auto build = [&](std::vector<torch::Tensor>& ps) {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::vector<torch::Tensor>{ps[0], ps[1], ps[4]});
    groups.emplace_back(std::vector<torch::Tensor>{ps[2], ps[3]}, std::make_unique<AdafactorOptions>(te));
    return std::make_unique<Adafactor>(std::move(groups), AdafactorOptions{});
  };
  auto run_steps = [&](std::vector<torch::Tensor>& ps, Adafactor& opt, int from, int to) {
    for (int k = from; k < to; ++k) {
      for (size_t i = 0; i < 4; ++i) ps[i].mutable_grad() = grads[k][i];  // ps[4] never gets one
      opt.step();
    }
  };

  auto straight = make(init);
  auto opt_straight = build(straight);
  run_steps(straight, *opt_straight, 0, 2 * kN);
  EXPECT_EQ(opt_straight->param_state(straight[4]), nullptr);

  auto first = make(init);
  auto opt_first = build(first);
  run_steps(first, *opt_first, 0, kN);
  ls::test::TempDir dir;
  torch::save(*opt_first, (dir / "adafactor.pt").string());

  std::vector<torch::Tensor> snapshot;
  for (const auto& p : first) snapshot.push_back(p.detach().clone());
  auto resumed = make(snapshot);
  auto opt_resumed = build(resumed);
  torch::load(*opt_resumed, (dir / "adafactor.pt").string());
  ASSERT_NE(opt_resumed->param_state(resumed[0]), nullptr);
  EXPECT_EQ(opt_resumed->param_state(resumed[0])->step(), kN);
  EXPECT_EQ(opt_resumed->param_state(resumed[4]), nullptr);
  EXPECT_TRUE(opt_resumed->param_state(resumed[2])->exp_avg().defined());
  run_steps(resumed, *opt_resumed, kN, 2 * kN);

  for (size_t i = 0; i < init.size(); ++i) {
    EXPECT_TRUE(torch::equal(resumed[i], straight[i])) << "parameter " << i;
  }
  for (size_t i = 0; i < 4; ++i) {
    const auto* a = opt_resumed->param_state(resumed[i]);
    const auto* b = opt_straight->param_state(straight[i]);
    EXPECT_EQ(a->step(), b->step());
    EXPECT_EQ(a->lr(), b->lr());
    for (auto [x, y] : {std::pair{a->exp_avg_sq_row(), b->exp_avg_sq_row()},
                        std::pair{a->exp_avg_sq_col(), b->exp_avg_sq_col()},
                        std::pair{a->exp_avg_sq(), b->exp_avg_sq()}, std::pair{a->exp_avg(), b->exp_avg()}}) {
      ASSERT_EQ(x.defined(), y.defined());
      if (x.defined()) {
        EXPECT_TRUE(torch::equal(x, y)) << "state of parameter " << i;
      }
    }
  }
}

// transformers: fp16/bf16 parameters step in a float32 copy with float32 state, written back.
TEST(Adafactor, LowPrecisionParamsStepInFloat32) {
  torch::manual_seed(3);
  for (auto dtype : {torch::kBFloat16, torch::kHalf}) {
    torch::Tensor w = torch::randn({8, 6}).to(dtype);
    torch::Tensor g = (torch::randn({8, 6}) * 0.01).to(dtype);
    auto low = w.clone().set_requires_grad(true);
    auto ref = w.to(torch::kFloat).set_requires_grad(true);
    Adafactor opt_low({low}), opt_ref({ref});
    for (int k = 0; k < 3; ++k) {
      low.mutable_grad() = g;
      ref.mutable_grad() = g.to(torch::kFloat);
      opt_low.step();
      opt_ref.step();
      EXPECT_TRUE(torch::equal(low, ref.detach().to(dtype))) << "step " << k;
      // the reference is stepped from its own rounded value, as the low-precision run is
      torch::NoGradGuard no_grad;
      ref.copy_(low.to(torch::kFloat));
    }
    EXPECT_EQ(low.scalar_type(), dtype);
    EXPECT_EQ(opt_low.param_state(low)->exp_avg_sq_row().scalar_type(), torch::kFloat);
  }
}

// LoRA up weights start at zero: RMS 0 <= eps[1], so the scale is eps[1] (a Python float) and
// the first update of a unit gradient is exactly lr = 1e-3 * 1e-2 in every element.
TEST(Adafactor, ZeroParameterTakesTheEpsScale) {
  auto w = torch::zeros({4, 5}, torch::requires_grad());
  Adafactor opt({w});
  w.mutable_grad() = torch::ones({4, 5});
  opt.step();
  EXPECT_EQ(opt.param_state(w)->rms(), 0.0);
  EXPECT_EQ(opt.param_state(w)->lr(), 1e-3 * 1e-2);
  EXPECT_TRUE(torch::equal(w, torch::full({4, 5}, -float(1e-3 * 1e-2))));
  // step 2: RMS(w) = 1e-5 > eps is false again (1e-5 < 1e-3); relative step 1/sqrt(2) > 1e-2
  w.mutable_grad() = torch::ones({4, 5});
  opt.step();
  EXPECT_EQ(opt.param_state(w)->lr(), 1e-3 * 1e-2);
}

TEST(Adafactor, DeviceAgnosticOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(5);
  torch::Tensor w = torch::randn({16, 8}), g = torch::randn({16, 8}) * 0.01;
  auto cpu = w.clone().set_requires_grad(true);
  auto gpu = w.to(torch::kCUDA).set_requires_grad(true);
  Adafactor opt_cpu({cpu}), opt_gpu({gpu});
  for (int k = 0; k < 3; ++k) {
    cpu.mutable_grad() = g;
    gpu.mutable_grad() = g.to(torch::kCUDA);
    opt_cpu.step();
    opt_gpu.step();
  }
  EXPECT_TRUE(ls::test::all_close(gpu.cpu(), cpu, 1e-5, 1e-7));
}

void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error, expected one containing: " << part;
  } catch (const ls::Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(Adafactor, RejectsWhatTransformersRejects) {
  auto p = torch::zeros({3}, torch::requires_grad());
  expect_error([&] { Adafactor opt({p}, AdafactorOptions(1e-3)); }, "cannot combine a manual lr");
  expect_error([&] { Adafactor opt({p}, AdafactorOptions().relative_step(false).warmup_init(true).lr(1e-3)); },
               "warmup_init=True requires relative_step=True");
  expect_error([&] { Adafactor opt({p}, AdafactorOptions().relative_step(false)); }, "needs an lr");
  expect_error([&] { Adafactor opt({p}, AdafactorOptions().beta1(1.0)); }, "beta1");
  expect_error([&] {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::vector<torch::Tensor>{p}, std::make_unique<AdafactorOptions>(AdafactorOptions(1e-4)));
    Adafactor opt(std::move(groups));
  }, "cannot combine a manual lr");
}

TEST(Adafactor, ParsesKohyaOptimizerArgs) {
  AdafactorOptions o = ls::train::parse_adafactor_args(
      {"scale_parameter=False relative_step=False warmup_init=False weight_decay=0.01 beta1=0.9 eps=1e-30,1e-3"});
  EXPECT_FALSE(o.scale_parameter());
  EXPECT_FALSE(o.relative_step());
  EXPECT_FALSE(o.warmup_init());
  EXPECT_EQ(o.weight_decay(), 0.01);
  ASSERT_TRUE(o.beta1().has_value());
  EXPECT_EQ(*o.beta1(), 0.9);
  EXPECT_EQ(std::get<0>(o.eps()), 1e-30);
  EXPECT_EQ(std::get<1>(o.eps()), 1e-3);
  EXPECT_FALSE(o.lr().has_value());

  AdafactorOptions d = ls::train::parse_adafactor_args({});
  EXPECT_TRUE(d.relative_step());
  EXPECT_TRUE(d.scale_parameter());
  EXPECT_FALSE(d.beta1().has_value());
  EXPECT_EQ(d.decay_rate(), -0.8);
  EXPECT_EQ(d.clip_threshold(), 1.0);

  // one entry per arg, a spaced tuple, clip/decay; kohya turns relative_step on for warmup_init
  AdafactorOptions w = ls::train::parse_adafactor_args(
      {"relative_step=False", "warmup_init=True", "eps=(1e-29, 2e-3)", "clip_threshold=2", "decay_rate=-0.5", "beta1=None"});
  EXPECT_TRUE(w.relative_step());
  EXPECT_TRUE(w.warmup_init());
  EXPECT_EQ(std::get<0>(w.eps()), 1e-29);
  EXPECT_EQ(std::get<1>(w.eps()), 2e-3);
  EXPECT_EQ(w.clip_threshold(), 2.0);
  EXPECT_EQ(w.decay_rate(), -0.5);
  EXPECT_FALSE(w.beta1().has_value());

  expect_error([] { ls::train::parse_adafactor_args({"betas=0.9,0.99"}); }, "has no option 'betas'; valid: eps");
  expect_error([] { ls::train::parse_adafactor_args({"relative_step=maybe"}); }, "must be True or False");
  expect_error([] { ls::train::parse_adafactor_args({"eps=1e-30"}); }, "2 comma-separated numbers");
  expect_error([] { ls::train::parse_adafactor_args({"weight_decay=inf"}); }, "must be a number");
  expect_error([] { ls::train::parse_adafactor_args({"weight_decay"}); }, "must be key=value");
  expect_error([] { ls::train::parse_adafactor_args({"beta1=0.9", "beta1=0.8"}); }, "given twice");
}

}  // namespace
