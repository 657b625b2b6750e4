// Prodigy against prodigyopt 1.1.2's own numbers (tests/fixtures/prodigy/prodigy.safetensors, made
// by scripts/make-prodigy-fixtures; cases in its README), exact save/resume through the trainer's
// archive, kohya optimizer_args parsing, and the lr rules (one lr for all groups, or 0). Helpers are
// pd_-prefixed: the unity build merges this file with the folder's other tests.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "support/support.h"
#include "train/lr_schedule.h"
#include "train/prodigy.h"
#include "train/train_config.h"

namespace {

using ls::train::Prodigy;
using ls::train::ProdigyOptions;

const std::vector<std::string> kPdNames = {"w", "b", "conv", "up"};
constexpr int kPdSteps = 20;
constexpr int kPdWarmup = 4;  // the fixture's cosine_warmup: transformers' cosine, 4 of 20 steps warmup

// Each step of the trajectory test starts from the reference's parameters (teacher forcing), while
// the port's moments, s, p0 and d are its own from step 0. A free-running comparison would only fit
// the CPU the fixture was made on: once d saturates (0.4 at step 14 in `default`) the toy problem's
// steps oscillate and double a difference each step (measured on prodigyopt itself: one rounding
// more in one dot at step 2 moves `b` by 6.5e-6 at step 20), and another SIMD width may sum in
// another order. Pinned parameters cut that loop, so the bound follows from one step's arithmetic:
// the port runs the reference's float32 kernels in its order (the scalars in double in Python's
// order), so the kernels of the fixture's machine give the same bits (measured: 0 everywhere). What
// another CPU may change is the order of a step's reductions (a dot and an |s| sum over <= 16
// float32 terms per parameter): ~sqrt(16) * 2^-24 = 2.4e-7 relative each (9e-7 at worst), which
// reaches d and from there the next step's size; a parameter then moves by that fraction of one
// step's change (here below its largest value): within 1e-6.
constexpr double kPdFp32Tol = 1e-6;
// bf16 runs the same ops in bf16, as prodigyopt does: the dot's result is rounded to bf16, so another
// summation order can move d by one bf16 rounding (2^-8) and a parameter by one bf16 ulp of its
// largest value (2^-8 of it).
constexpr double kPdBf16Tol = 1.0 / 256;

struct PdCase {
  std::string name;
  ProdigyOptions defaults;                 // the constructor's kwargs (kohya's optimizer_args)
  std::vector<ProdigyOptions> groups;      // each group's options (defaults plus overrides)
  std::vector<std::vector<std::string>> members;
  std::vector<double> lrs;                 // group lrs before the schedule
  bool schedule = false;                   // cosine with warmup
  torch::Dtype dtype = torch::kFloat;
};

// The table of tests/fixtures/prodigy/make_fixtures.py CASES.
std::vector<PdCase> pd_cases() {
  const std::vector<std::vector<std::string>> one = {kPdNames};
  const std::vector<std::vector<std::string>> two = {{"w", "b"}, {"conv", "up"}};
  auto single = [&](const std::string& name, ProdigyOptions o, bool schedule = false,
                    torch::Dtype dtype = torch::kFloat) {
    return PdCase{name, o, {o}, one, {1.0}, schedule, dtype};
  };
  ProdigyOptions wd01 = ProdigyOptions().weight_decay(0.01);
  return {
      single("default", ProdigyOptions()),
      single("decoupled_wd", ProdigyOptions().weight_decay(0.05)),
      single("coupled_wd", ProdigyOptions().weight_decay(0.05).decouple(false)),
      single("bias_correction", ProdigyOptions().use_bias_correction(true)),
      single("safeguard_warmup", ProdigyOptions().safeguard_warmup(true), true),
      single("d_coef_growth", ProdigyOptions().d_coef(2.0).growth_rate(1.5).d0(1e-5)),
      single("betas_beta3_eps", ProdigyOptions().betas({0.8, 0.99}).beta3(0.95).eps(1e-6)),
      single("beta1_zero", ProdigyOptions().betas({0.0, 0.999}).weight_decay(0.02).decouple(false)),
      single("slice_p", ProdigyOptions().slice_p(3)),
      single("warmup_schedule", ProdigyOptions(), true),
      PdCase{"two_groups", wd01, {wd01, ProdigyOptions(wd01).weight_decay(0.0).eps(1e-7).slice_p(2)}, two,
             {0.5, 0.5}, true, torch::kFloat},
      PdCase{"frozen_group", wd01, {wd01, wd01}, two, {1.0, 0.0}, false, torch::kFloat},
      single("missing_grads", ProdigyOptions()),
      single("kohya_example", ProdigyOptions().decouple(true).weight_decay(0.01).d_coef(2.0)
                                  .use_bias_correction(true).safeguard_warmup(true), true),
      single("bf16", wd01, false, torch::kBFloat16),
      single("bf16_coupled", ProdigyOptions().betas({0.0, 0.999}).weight_decay(0.01).decouple(false)
                                 .use_bias_correction(true), false, torch::kBFloat16),
  };
}

// max |a - b| / max |b|, and 0 for equal tensors (a parameter still at its zero start).
double pd_rel(const torch::Tensor& actual, const torch::Tensor& expected) {
  if (torch::equal(actual.to(expected.scalar_type()), expected)) return 0.0;
  return ls::test::norm_rel_error(actual, expected);
}

double pd_rel(double actual, double expected, double scale) { return std::abs(actual - expected) / scale; }

// One run of a case: its parameters, optimizer and schedule, fed the fixture's gradients.
struct PdRun {
  std::map<std::string, torch::Tensor> params;
  std::unique_ptr<Prodigy> opt;
  std::unique_ptr<ls::train::LrScheduler> schedule;
};

PdRun pd_start(const PdCase& c, const std::map<std::string, torch::Tensor>& values) {
  PdRun run;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (size_t g = 0; g < c.members.size(); ++g) {
    std::vector<torch::Tensor> ps;
    for (const auto& n : c.members[g]) {
      run.params[n] = values.at(n).to(c.dtype).clone().set_requires_grad(true);
      ps.push_back(run.params[n]);
    }
    groups.emplace_back(ps, std::make_unique<ProdigyOptions>(ProdigyOptions(c.groups[g]).lr(c.lrs[g])));
  }
  run.opt = std::make_unique<Prodigy>(std::move(groups), c.defaults);
  if (c.schedule) {
    ls::train::LrScheduleOptions so;
    so.kind = ls::train::LrScheduleKind::kCosine;
    so.warmup_steps = kPdWarmup;
    so.total_steps = kPdSteps;
    run.schedule = std::make_unique<ls::train::LrScheduler>(*run.opt, so, c.lrs, 1.0);
  }
  return run;
}

std::map<std::string, torch::Tensor> pd_init(const ls::io::SafetensorsReader& fx) {
  std::map<std::string, torch::Tensor> init;
  for (const auto& n : kPdNames) init[n] = fx.load("init/" + n);
  return init;
}

void pd_feed(const ls::io::SafetensorsReader& fx, const PdCase& c, PdRun& run, int k) {
  const torch::Tensor has = fx.load(c.name + "/has_grad");
  for (size_t i = 0; i < kPdNames.size(); ++i) {
    const std::string& n = kPdNames[i];
    run.params[n].mutable_grad() =
        has[k][static_cast<int64_t>(i)].item<int64_t>() ? fx.load(c.name + "/grad/" + n)[k].clone() : torch::Tensor();
  }
}

void pd_step(const ls::io::SafetensorsReader& fx, const PdCase& c, PdRun& run, int k) {
  pd_feed(fx, c, run, k);
  run.opt->step();
  if (run.schedule) run.schedule->step();
}

class ProdigyFixture : public ::testing::Test {
 protected:
  ls::io::SafetensorsReader fx{(std::filesystem::path(ls::test::kSourceDir) / "tests/fixtures/prodigy/prodigy.safetensors").string()};
};

// Every case for 20 steps, each from the reference's parameters of the step before (see kPdFp32Tol):
// the group lrs the schedule sets, each parameter, the shared d estimate and the final moments
// against prodigyopt's.
TEST_F(ProdigyFixture, TrajectoriesMatchProdigyopt) {
  EXPECT_EQ(fx.metadata().at("reference"), "prodigyopt 1.1.2");
  double worst_all = 0;
  for (const PdCase& c : pd_cases()) {
    SCOPED_TRACE("case " + c.name);
    const std::string pre = c.name + "/";
    PdRun run = pd_start(c, pd_init(fx));
    const torch::Tensor lr = fx.load(pre + "lr"), d = fx.load(pre + "d"), d_max = fx.load(pre + "d_max");
    const torch::Tensor d_num = fx.load(pre + "d_numerator"), d_hat = fx.load(pre + "d_hat");
    const torch::Tensor d_denom = fx.load(pre + "d_denom"), k_ref = fx.load(pre + "k");
    const double num_scale = d_num.abs().max().item<double>();
    const double hat_scale = std::max(d_hat.nan_to_num(0).abs().max().item<double>(), 1e-300);
    double worst_param = 0, worst_d = 0, worst_lr = 0, worst_state = 0;
    for (int k = 0; k < kPdSteps; ++k) {
      for (size_t g = 0; g < c.lrs.size(); ++g) {
        const double expected = lr[k][static_cast<int64_t>(g)].item<double>();
        const double actual = run.opt->param_groups()[g].options().get_lr();
        worst_lr = std::max(worst_lr, expected == 0 ? std::abs(actual) : std::abs(actual - expected) / expected);
      }
      if (k > 0) {
        torch::NoGradGuard no_grad;
        for (const auto& n : kPdNames) run.params.at(n).copy_(fx.load(pre + "param/" + n)[k - 1]);
      }
      pd_step(fx, c, run, k);
      for (const auto& n : kPdNames)
        worst_param = std::max(worst_param, pd_rel(run.params.at(n).detach(), fx.load(pre + "param/" + n)[k]));
      const ls::train::ProdigyEstimate e = run.opt->estimate();
      EXPECT_EQ(e.k, k_ref[k].item<int64_t>()) << "step " << k;
      worst_d = std::max({worst_d, pd_rel(e.d, d[k].item<double>(), d[k].item<double>()),
                          pd_rel(e.d_max, d_max[k].item<double>(), d_max[k].item<double>()),
                          pd_rel(e.d_numerator, d_num[k].item<double>(), num_scale)});
      const double ref_denom = d_denom[k].item<double>(), ref_hat = d_hat[k].item<double>();
      ASSERT_EQ(e.d_denom.has_value(), !std::isnan(ref_denom)) << "step " << k;
      if (e.d_denom) {
        worst_d = std::max({worst_d, pd_rel(*e.d_denom, ref_denom, ref_denom), pd_rel(*e.d_hat, ref_hat, hat_scale)});
      }
      for (size_t g = 1; g < c.members.size(); ++g) {  // every group holds the one estimate
        const auto& o = static_cast<const ProdigyOptions&>(run.opt->param_groups()[g].options());
        EXPECT_EQ(*o.d(), e.d);
        EXPECT_EQ(o.k(), e.k);
      }
    }
    for (const auto& n : kPdNames) {
      const ls::train::ProdigyParamState* s = run.opt->param_state(run.params.at(n));
      ASSERT_NE(s, nullptr) << n;
      EXPECT_EQ(s->step(), fx.load(pre + "state/" + n + "/step").item<int64_t>()) << n;
      EXPECT_EQ(s->exp_avg().defined(), fx.contains(pre + "state/" + n + "/exp_avg")) << n;
      for (const auto& [key, actual] : {std::pair{"exp_avg", s->exp_avg()}, std::pair{"exp_avg_sq", s->exp_avg_sq()},
                                        std::pair{"s", s->s()}, std::pair{"p0", s->p0()}}) {
        if (!actual.defined()) continue;
        const torch::Tensor expected = fx.load(pre + "state/" + n + "/" + key);
        ASSERT_EQ(actual.sizes(), expected.sizes()) << n << " " << key;
        ASSERT_EQ(actual.scalar_type(), expected.scalar_type()) << n << " " << key;
        worst_state = std::max(worst_state, pd_rel(actual, expected));
      }
    }
    std::printf("prodigy case %-16s param rel %.3g, d rel %.3g, lr rel %.3g, state rel %.3g\n", c.name.c_str(),
                worst_param, worst_d, worst_lr, worst_state);
    const double tol = c.dtype == torch::kBFloat16 ? kPdBf16Tol : kPdFp32Tol;
    EXPECT_LE(worst_param, tol);
    EXPECT_LE(worst_d, tol);
    EXPECT_LE(worst_lr, 1e-15);  // the same double formula as transformers' lambda
    EXPECT_LE(worst_state, tol);
    worst_all = std::max(worst_all, worst_param);
  }
  std::printf("prodigy: worst parameter rel difference over all cases %.3g\n", worst_all);
}

// Every case: 10 steps, save through the trainer's archive (train_state's optimizer.pt), a fresh
// optimizer on the saved values loads it, 10 more steps: the same bits as 20 straight steps.
TEST_F(ProdigyFixture, SaveLoadMidTrajectoryContinuesBitIdentically) {
  constexpr int kHalf = kPdSteps / 2;
  for (const PdCase& c : pd_cases()) {
    SCOPED_TRACE("case " + c.name);
    PdRun straight = pd_start(c, pd_init(fx));
    for (int k = 0; k < kPdSteps; ++k) pd_step(fx, c, straight, k);
    // Free-running, for the record (no bound: see kPdFp32Tol): 0 on the fixture's CPU.
    double free_run = 0;
    for (const auto& n : kPdNames)
      free_run = std::max(free_run, pd_rel(straight.params.at(n).detach(), fx.load(c.name + "/param/" + n)[kPdSteps - 1]));
    std::printf("prodigy case %-16s free-running 20 steps: param rel %.3g\n", c.name.c_str(), free_run);

    PdRun first = pd_start(c, pd_init(fx));
    for (int k = 0; k < kHalf; ++k) pd_step(fx, c, first, k);
    ls::test::TempDir dir;
    const std::string path = (dir / "optimizer.pt").string();
    {
      torch::serialize::OutputArchive archive;
      first.opt->save(archive);
      archive.save_to(path);
    }
    std::map<std::string, torch::Tensor> snapshot;
    for (const auto& [n, p] : first.params) snapshot[n] = p.detach().clone();
    PdRun resumed = pd_start(c, snapshot);  // built from the settings alone; the estimate comes from the file
    {
      torch::serialize::InputArchive archive;
      archive.load_from(path);
      resumed.opt->load(archive);
    }
    if (resumed.schedule) resumed.schedule->set_last_step(kHalf);  // as train's resume does
    EXPECT_EQ(resumed.opt->estimate().d, first.opt->estimate().d);
    for (int k = kHalf; k < kPdSteps; ++k) pd_step(fx, c, resumed, k);

    for (const auto& n : kPdNames) {
      EXPECT_TRUE(ls::test::bit_equal(resumed.params.at(n).detach(), straight.params.at(n).detach())) << n;
      const auto* a = resumed.opt->param_state(resumed.params.at(n));
      const auto* b = straight.opt->param_state(straight.params.at(n));
      ASSERT_TRUE(a && b) << n;
      EXPECT_EQ(a->step(), b->step());
      EXPECT_TRUE(ls::test::bit_equal(a->s(), b->s())) << n;
      EXPECT_TRUE(ls::test::bit_equal(a->p0(), b->p0())) << n;
      EXPECT_TRUE(ls::test::bit_equal(a->exp_avg_sq(), b->exp_avg_sq())) << n;
    }
    const ls::train::ProdigyEstimate ea = resumed.opt->estimate(), eb = straight.opt->estimate();
    EXPECT_EQ(ea.d, eb.d);
    EXPECT_EQ(ea.d_max, eb.d_max);
    EXPECT_EQ(ea.d_numerator, eb.d_numerator);
    EXPECT_EQ(ea.k, eb.k);
    EXPECT_EQ(ea.d_hat, eb.d_hat);
  }
}

// The archive keeps every setting too (a resumed run reads them from the file, as torch's would).
TEST(Prodigy, ArchiveRoundTripsTheOptions) {
  auto p = torch::ones({3}, torch::requires_grad());
  ProdigyOptions o = ProdigyOptions(0.5).betas({0.8, 0.9}).beta3(0.7).eps(1e-7).weight_decay(0.1).decouple(false)
                         .use_bias_correction(true).safeguard_warmup(true).d0(1e-4).d_coef(3).slice_p(2);
  Prodigy a({p}, o);
  p.mutable_grad() = torch::full({3}, 0.5);
  a.step();
  ls::test::TempDir dir;
  torch::save(a, (dir / "o.pt").string());
  auto q = p.detach().clone().set_requires_grad(true);
  Prodigy b({q}, ProdigyOptions());
  torch::load(b, (dir / "o.pt").string());
  const auto& r = static_cast<const ProdigyOptions&>(b.param_groups()[0].options());
  EXPECT_EQ(r.lr(), 0.5);
  EXPECT_EQ(std::get<0>(r.betas()), 0.8);
  EXPECT_EQ(std::get<1>(r.betas()), 0.9);
  EXPECT_EQ(r.beta3().value_or(0), 0.7);
  EXPECT_EQ(r.eps(), 1e-7);
  EXPECT_EQ(r.weight_decay(), 0.1);
  EXPECT_FALSE(r.decouple());
  EXPECT_TRUE(r.use_bias_correction());
  EXPECT_TRUE(r.safeguard_warmup());
  EXPECT_EQ(r.d0(), 1e-4);
  EXPECT_EQ(r.d_coef(), 3.0);
  EXPECT_EQ(r.slice_p(), 2);
  EXPECT_TRUE(std::isinf(ProdigyOptions().growth_rate()));
  EXPECT_EQ(b.estimate().d, a.estimate().d);
  EXPECT_EQ(b.estimate().k, 1);
  // growth_rate's default inf survives the archive
  Prodigy c({q}, ProdigyOptions());
  torch::save(c, (dir / "c.pt").string());
  Prodigy e({q}, ProdigyOptions().growth_rate(2));
  torch::load(e, (dir / "c.pt").string());
  EXPECT_TRUE(std::isinf(static_cast<const ProdigyOptions&>(e.param_groups()[0].options()).growth_rate()));
}

// prodigyopt adds the coupled decay to p.grad in place; the port leaves the caller's gradient alone.
TEST(Prodigy, LeavesTheGradientAsGiven) {
  auto p = torch::ones({4}, torch::requires_grad());
  Prodigy opt({p}, ProdigyOptions().weight_decay(0.5).decouple(false));
  p.mutable_grad() = torch::full({4}, 0.25);
  opt.step();
  EXPECT_TRUE(torch::equal(p.grad(), torch::full({4}, 0.25)));
}

TEST(Prodigy, GroupLrsMustAgreeOrBeZero) {
  auto a = torch::ones({2}, torch::requires_grad()), b = torch::ones({2}, torch::requires_grad());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{a}, std::make_unique<ProdigyOptions>(1.0));
  groups.emplace_back(std::vector<torch::Tensor>{b}, std::make_unique<ProdigyOptions>(0.5));
  Prodigy opt(std::move(groups));
  a.mutable_grad() = torch::ones({2});
  b.mutable_grad() = torch::ones({2});
  EXPECT_NE(ls::test::error_of([&] { opt.step(); }).find("every parameter group needs the same lr (or 0), got 0.5 and 1"),
            std::string::npos);
  EXPECT_TRUE(torch::equal(a.detach(), torch::ones({2})));  // refused before anything moved
  opt.param_groups()[1].options().set_lr(0.0);
  EXPECT_EQ(ls::test::error_of([&] { opt.step(); }), "");
}

TEST(Prodigy, ParsesKohyaOptimizerArgs) {
  const ProdigyOptions o = ls::train::parse_prodigy_args(
      {"decouple=True", "weight_decay=0.01", "d_coef=2", "use_bias_correction=True", "safeguard_warmup=True"});
  EXPECT_TRUE(o.decouple());
  EXPECT_EQ(o.weight_decay(), 0.01);
  EXPECT_EQ(o.d_coef(), 2.0);
  EXPECT_TRUE(o.use_bias_correction());
  EXPECT_TRUE(o.safeguard_warmup());
  EXPECT_EQ(o.lr(), 1.0);

  const ProdigyOptions d = ls::train::parse_prodigy_args({});  // prodigyopt's defaults
  EXPECT_EQ(std::get<0>(d.betas()), 0.9);
  EXPECT_EQ(std::get<1>(d.betas()), 0.999);
  EXPECT_FALSE(d.beta3().has_value());
  EXPECT_EQ(d.eps(), 1e-8);
  EXPECT_EQ(d.weight_decay(), 0.0);
  EXPECT_TRUE(d.decouple());
  EXPECT_FALSE(d.use_bias_correction());
  EXPECT_FALSE(d.safeguard_warmup());
  EXPECT_EQ(d.d0(), 1e-6);
  EXPECT_EQ(d.d_coef(), 1.0);
  EXPECT_TRUE(std::isinf(d.growth_rate()));
  EXPECT_EQ(d.slice_p(), 1);

  const ProdigyOptions w = ls::train::parse_prodigy_args(
      {"betas=(0.9, 0.99) beta3=None eps=1e-7", "d0=1e-5 growth_rate=1.02 slice_p=11 fsdp_in_use=False decouple=False"});
  EXPECT_EQ(std::get<1>(w.betas()), 0.99);
  EXPECT_FALSE(w.beta3().has_value());
  EXPECT_EQ(w.eps(), 1e-7);
  EXPECT_EQ(w.d0(), 1e-5);
  EXPECT_EQ(w.growth_rate(), 1.02);
  EXPECT_EQ(w.slice_p(), 11);
  EXPECT_FALSE(w.decouple());
  EXPECT_EQ(ls::train::parse_prodigy_args({"beta3=0.95"}).beta3().value_or(0), 0.95);
}

TEST(Prodigy, RefusesBadOptimizerArgsByName) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"momentum=0.9", "Prodigy has no option 'momentum'; valid: betas, beta3"},
      {"lr=1", "Prodigy takes its lr from learning_rate"},
      {"fsdp_in_use=True", "fsdp_in_use=True"},
      {"slice_p=1.5", "slice_p must be a whole number"},
      {"slice_p=0", "slice_p must be >= 1"},
      {"betas=0.9", "betas must be 2 comma-separated numbers"},
      {"betas=0.9,1.0", "betas must both be in [0, 1)"},
      {"d0=0", "d0 must be > 0"},
      {"eps=0", "eps must be > 0"},
      {"decouple=yes", "decouple must be True or False"},
      {"d_coef=two", "d_coef must be a number"},
      {"beta3=fast", "beta3 must be a number or None"},
  };
  for (const auto& [arg, part] : cases) {
    const std::string msg = ls::test::error_of([&] { ls::train::parse_prodigy_args({arg}); });
    EXPECT_NE(msg.find(part), std::string::npos) << arg << " -> " << msg;
  }
  EXPECT_NE(ls::test::error_of([] { Prodigy opt({torch::zeros({2})}, ProdigyOptions(0.0)); }).find("lr must be > 0"),
            std::string::npos);
}

// kohya's config: Prodigy's lr rules are checked before anything loads.
TEST(ProdigyConfig, ValidateChecksTheLearningRates) {
  auto config = [] {
    ls::train::TrainConfig c;
    c.pretrained_model_name_or_path = "/m.safetensors";
    c.output_dir = "/out";
    c.train_data_dir = "/data";
    c.optimizer_type = "Prodigy";
    c.learning_rate = 1;
    return c;
  };
  EXPECT_EQ(ls::test::error_of([&] { ls::train::validate(config()); }), "");
  ls::train::TrainConfig frozen_te = config();
  frozen_te.text_encoder_lr = 0;
  EXPECT_EQ(ls::test::error_of([&] { ls::train::validate(frozen_te); }), "");
  ls::train::TrainConfig unet_only = config();
  unet_only.text_encoder_lr = 0.5;
  unet_only.network_train_unet_only = true;
  EXPECT_EQ(ls::test::error_of([&] { ls::train::validate(unet_only); }), "");
  ls::train::TrainConfig differ = config();
  differ.unet_lr = 1;
  differ.text_encoder_lr = 0.5;
  EXPECT_NE(ls::test::error_of([&] { ls::train::validate(differ); })
                .find("text_encoder_lr (0.5) and unet_lr (1) must be equal, or one 0"),
            std::string::npos);
  ls::train::TrainConfig zero = config();
  zero.learning_rate = 0;
  zero.unet_lr = zero.text_encoder_lr = 1;
  EXPECT_NE(ls::test::error_of([&] { ls::train::validate(zero); }).find("Prodigy needs learning_rate > 0"),
            std::string::npos);
}

}  // namespace
