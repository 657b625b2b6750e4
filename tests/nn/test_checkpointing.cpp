// Gradient checkpointing: the same gradients as without it (inputs and parameters), parameter
// gradients even when no input needs one, and dropout masks replayed in the recomputation.
#include <gtest/gtest.h>

#include "nn/checkpointing.h"
#include "nn/layers.h"
#include "support/support.h"

namespace ls::nn {
namespace {

struct TwoLayer {
  torch::Tensor w1 = torch::randn({6, 5}, torch::kFloat64).requires_grad_(true);
  torch::Tensor w2 = torch::randn({4, 6}, torch::kFloat64).requires_grad_(true);
  torch::Tensor operator()(const torch::Tensor& x, double dropout = 0) const {
    torch::Tensor h = torch::tanh(torch::matmul(x, w1.t()));
    if (dropout > 0) h = torch::dropout(h, dropout, /*train=*/true);
    return torch::sigmoid(torch::matmul(h, w2.t()));
  }
  void zero() {
    w1.mutable_grad() = torch::Tensor();
    w2.mutable_grad() = torch::Tensor();
  }
};

TEST(Checkpointing, SameGradientsForInputsAndParameters) {
  torch::manual_seed(0);
  TwoLayer f;
  const torch::Tensor x0 = torch::randn({3, 5}, torch::kFloat64);
  const torch::Tensor w = torch::randn({3, 4}, torch::kFloat64);

  torch::Tensor x = x0.clone().requires_grad_(true);
  (f(x) * w).sum().backward();
  const torch::Tensor gx = x.grad().clone(), g1 = f.w1.grad().clone(), g2 = f.w2.grad().clone();

  f.zero();
  torch::Tensor xc = x0.clone().requires_grad_(true);
  const torch::Tensor y = checkpoint([&](const std::vector<torch::Tensor>& in) { return f(in[0]); }, {xc}, true);
  EXPECT_TRUE(torch::equal(y, f(x0).detach()));
  (y * w).sum().backward();
  EXPECT_TRUE(torch::equal(xc.grad(), gx));
  EXPECT_TRUE(torch::equal(f.w1.grad(), g1));
  EXPECT_TRUE(torch::equal(f.w2.grad(), g2));
}

TEST(Checkpointing, ParameterGradientsWhenNoInputNeedsOne) {
  torch::manual_seed(1);
  TwoLayer f;
  const torch::Tensor x = torch::randn({3, 5}, torch::kFloat64);  // frozen input, as a UNet's first block sees
  f(x).sum().backward();
  const torch::Tensor g1 = f.w1.grad().clone();
  f.zero();
  checkpoint([&](const std::vector<torch::Tensor>& in) { return f(in[0]); }, {x}, true).sum().backward();
  ASSERT_TRUE(f.w1.grad().defined());
  EXPECT_TRUE(torch::equal(f.w1.grad(), g1));
  // Without the anchor the node is not recorded: reentrant checkpointing's silent loss.
  f.zero();
  const torch::Tensor y = checkpoint([&](const std::vector<torch::Tensor>& in) { return f(in[0]); }, {x}, false);
  EXPECT_FALSE(y.requires_grad());
}

TEST(Checkpointing, DropoutMaskIsReplayed) {
  TwoLayer f;
  const torch::Tensor x0 = torch::randn({8, 5}, torch::kFloat64);
  torch::manual_seed(42);
  torch::Tensor x = x0.clone().requires_grad_(true);
  f(x, 0.5).sum().backward();
  const torch::Tensor gx = x.grad().clone(), g1 = f.w1.grad().clone();
  const torch::Tensor after_plain = torch::rand({1}, torch::kFloat64);
  f.zero();
  torch::manual_seed(42);
  torch::Tensor xc = x0.clone().requires_grad_(true);
  const torch::Tensor y =
      checkpoint([&](const std::vector<torch::Tensor>& in) { return f(in[0], 0.5); }, {xc}, true);
  const torch::Tensor after_ckpt_forward = torch::rand({1}, torch::kFloat64);
  y.sum().backward();
  EXPECT_TRUE(torch::equal(xc.grad(), gx));
  EXPECT_TRUE(torch::equal(f.w1.grad(), g1));
  // The RNG stream after the forward is where it would be without checkpointing, and backward
  // leaves it untouched.
  EXPECT_TRUE(torch::equal(after_ckpt_forward, after_plain));
}

TEST(Checkpointing, PlainCallWithoutGradMode) {
  TwoLayer f;
  const torch::Tensor x = torch::randn({2, 5}, torch::kFloat64);
  torch::NoGradGuard no_grad;
  const torch::Tensor y = checkpoint([&](const std::vector<torch::Tensor>& in) { return f(in[0]); }, {x}, true);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(torch::equal(y, f(x)));
}

TEST(Checkpointing, SeesTrainableAdaptersOfLayers) {
  struct Delta : torch::nn::Module, Adapter {
    torch::Tensor scale = register_parameter("scale", torch::ones({1}));
    torch::Tensor delta(const torch::Tensor& x) override { return x.narrow(-1, 0, 3) * scale; }
  };
  torch::nn::Sequential seq(Linear(3, 3));
  for (auto& p : seq->parameters()) p.set_requires_grad(false);
  EXPECT_FALSE(has_trainable_parameters(*seq));
  auto adapter = std::make_shared<Delta>();
  seq[0]->as<LinearImpl>()->add_adapter(adapter);
  EXPECT_TRUE(has_trainable_parameters(*seq));
  adapter->scale.set_requires_grad(false);
  EXPECT_FALSE(has_trainable_parameters(*seq));
}

}  // namespace
}  // namespace ls::nn
