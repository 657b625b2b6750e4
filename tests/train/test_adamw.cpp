// libtorch's AdamW (kohya's default optimizer) against torch.optim.AdamW's update written out
// in float64, bit-exact save/resume, and kohya optimizer_args parsing.
#include <cmath>

#include "core/error.h"
#include "support/support.h"
#include "train/adamw.h"

namespace {

// torch.optim.AdamW (torch 1.13 _single_tensor_adamw), one parameter, plain doubles:
// decoupled decay p *= 1 - lr*wd; moments; bias corrections; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
struct ReferenceAdamW {
  double lr, beta1, beta2, eps, wd;
  std::vector<double> m, v;
  int64_t step = 0;
  void update(std::vector<double>& p, const std::vector<double>& g) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    ++step;
    double bc1 = 1 - std::pow(beta1, double(step));
    double bc2 = 1 - std::pow(beta2, double(step));
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] *= 1 - lr * wd;
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
    }
  }
};

std::vector<double> values(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

TEST(AdamW, MatchesTorchOptimAdamWFormula) {
  torch::manual_seed(11);
  auto init = torch::randn({5, 7}, torch::kDouble);
  auto p = init.clone().set_requires_grad(true);
  torch::optim::AdamW opt({p}, ls::train::parse_adamw_args({"weight_decay=0.1 betas=0.8,0.99"}, 2e-3));
  ReferenceAdamW ref{2e-3, 0.8, 0.99, 1e-8, 0.1, {}, {}};
  std::vector<double> expected = values(init);
  for (int k = 0; k < 3; ++k) {
    auto g = torch::randn({5, 7}, torch::kDouble) * (0.1 * (k + 1));
    p.mutable_grad() = g;
    opt.step();
    ref.update(expected, values(g));
    auto want = torch::tensor(expected, torch::kDouble).view({5, 7});
    EXPECT_TRUE(ls::test::all_close(p.detach(), want, 1e-14, 1e-15)) << "step " << k;
  }
  // the update is not negligible: the check above could not pass with a wrong formula
  EXPECT_GT((p.detach() - init).abs().max().item<double>(), 1e-3);
}

TEST(AdamW, ResumeIsBitExact) {
  constexpr int kN = 3;
  torch::manual_seed(12);
  std::vector<torch::Tensor> init = {torch::randn({4, 3}), torch::randn({3})};
  std::vector<std::vector<torch::Tensor>> grads(2 * kN);
  for (auto& g : grads) g = {torch::randn({4, 3}), torch::randn({3})};
  auto make = [](const std::vector<torch::Tensor>& vals) {
    std::vector<torch::Tensor> ps;
    for (const auto& v : vals) ps.push_back(v.detach().clone().set_requires_grad(true));
    return ps;
  };
  auto run = [&](std::vector<torch::Tensor>& ps, torch::optim::AdamW& opt, int from, int to) {
    for (int k = from; k < to; ++k) {
      for (size_t i = 0; i < ps.size(); ++i) ps[i].mutable_grad() = grads[k][i];
      opt.step();
    }
  };
  auto options = ls::train::parse_adamw_args({}, 1e-3);
  auto straight = make(init);
  torch::optim::AdamW opt_straight(straight, options);
  run(straight, opt_straight, 0, 2 * kN);

  auto first = make(init);
  torch::optim::AdamW opt_first(first, options);
  run(first, opt_first, 0, kN);
  ls::test::TempDir dir;
  torch::save(opt_first, (dir / "adamw.pt").string());
  auto resumed = make(first);
  torch::optim::AdamW opt_resumed(resumed, options);
  torch::load(opt_resumed, (dir / "adamw.pt").string());
  run(resumed, opt_resumed, kN, 2 * kN);
  for (size_t i = 0; i < init.size(); ++i) {
    EXPECT_TRUE(torch::equal(resumed[i], straight[i])) << i;
  }
}

TEST(AdamW, ParsesKohyaOptimizerArgs) {
  auto d = ls::train::parse_adamw_args({}, 1e-4);
  EXPECT_EQ(d.lr(), 1e-4);
  EXPECT_EQ(d.weight_decay(), 0.01);  // torch.optim.AdamW's default, kept by libtorch
  EXPECT_EQ(d.eps(), 1e-8);
  EXPECT_EQ(std::get<0>(d.betas()), 0.9);
  EXPECT_EQ(std::get<1>(d.betas()), 0.999);
  auto o = ls::train::parse_adamw_args({"weight_decay=0.1", "betas=(0.9, 0.99)", "eps=1e-6", "amsgrad=True"}, 1e-4);
  EXPECT_EQ(o.weight_decay(), 0.1);
  EXPECT_EQ(std::get<1>(o.betas()), 0.99);
  EXPECT_EQ(o.eps(), 1e-6);
  EXPECT_TRUE(o.amsgrad());
  try {
    ls::train::parse_adamw_args({"momentum=0.9"}, 1e-4);
    ADD_FAILURE() << "momentum accepted";
  } catch (const ls::Error& e) {
    EXPECT_STREQ(e.what(), "optimizer_args: AdamW has no option 'momentum'; valid: betas, eps, weight_decay, amsgrad");
  }
  EXPECT_THROW(ls::train::parse_adamw_args({"betas=0.9,1.5"}, 1e-4), ls::Error);
}

}  // namespace
