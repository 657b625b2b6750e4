// nn::conv2d's choice of CPU kernel (unfold + GEMM for small outputs, at::conv2d otherwise) and
// that both kernels compute the convolution: outputs and input gradients in float32 within the
// rounding bound of their sums of the float64 result.
#include <ATen/record_function.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/functional.h"
#include "support/support.h"

namespace {

// The top-level ATen operators called on this thread while `run` runs.
std::vector<std::string> ops_called(const std::function<void()>& run) {
  static thread_local std::vector<std::string>* names = nullptr;
  static thread_local int depth = 0;
  std::vector<std::string> out;
  names = &out;
  const auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(
      [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
        if (names && depth++ == 0) names->push_back(fn.name());
        return nullptr;
      },
      [](const at::RecordFunction&, at::ObserverContext*) { --depth; }));
  run();
  at::removeCallback(handle);
  names = nullptr;
  return out;
}

// `trained`: the weight needs a gradient (a LoCon's), asked with grad mode on.
std::string kernel_for(const std::vector<int64_t>& x_shape, int64_t kernel, int64_t stride, int64_t padding,
                       c10::ScalarType dtype = torch::kFloat, bool trained = false) {
  const auto x = torch::randn(x_shape, torch::TensorOptions().dtype(dtype));
  const auto w =
      torch::randn({4, x_shape[1], kernel, kernel}, torch::TensorOptions().dtype(dtype)).requires_grad_(trained);
  torch::AutoGradMode grad_mode(trained);
  const auto ops = ops_called([&] { ls::nn::conv2d(x, w, {}, stride, padding); });
  return ops.empty() ? "" : ops.front();
}

TEST(Conv2dKernels, SmallOutputsByGemmTheRestByAtenConv2d) {
  EXPECT_EQ(kernel_for({2, 8, 16, 16}, 3, 1, 1), "aten::thnn_conv2d");  // 256 pixels per image
  EXPECT_EQ(kernel_for({1, 8, 32, 32}, 3, 2, 1), "aten::thnn_conv2d");  // downsampled to 16x16
  EXPECT_EQ(kernel_for({1, 8, 8, 8}, 1, 1, 0), "aten::thnn_conv2d");
  EXPECT_EQ(kernel_for({1, 8, 17, 16}, 3, 1, 1), "aten::conv2d");       // 272 pixels
  EXPECT_EQ(kernel_for({1, 8, 32, 32}, 3, 1, 1), "aten::conv2d");
  EXPECT_EQ(kernel_for({1, 8, 8, 8}, 3, 1, 1, torch::kDouble), "aten::conv2d");  // float32 only
  // A trained weight: slow_conv2d has no weight gradient for it.
  EXPECT_EQ(kernel_for({1, 8, 8, 8}, 3, 1, 1, torch::kFloat, true), "aten::conv2d");
  ls::nn::DirectConvGuard direct;
  EXPECT_EQ(kernel_for({2, 8, 16, 16}, 3, 1, 1), "aten::conv2d");
}

// y and dL/dx for L = sum(y * g), on the dtype of x.
std::pair<torch::Tensor, torch::Tensor> forward_backward(const torch::Tensor& x0, const torch::Tensor& w,
                                                         const torch::Tensor& b, const torch::Tensor& g,
                                                         int64_t stride, int64_t padding) {
  auto x = x0.clone().requires_grad_(true);
  auto y = ls::nn::conv2d(x, w, b, stride, padding);
  (y * g).sum().backward();
  return {y.detach(), x.grad()};
}

// A float32 sum of n products is within n * 2^-24 * sum|terms| of the exact one, in any order
// (and fused multiply-adds round less); the bias is one term more. The float64 reference's own
// rounding is 2^29 times smaller. `terms` are the float64 sums of |terms| per element.
::testing::AssertionResult within_rounding(const torch::Tensor& actual, const torch::Tensor& exact,
                                           const torch::Tensor& terms, int64_t n) {
  const auto err = (actual.to(torch::kDouble) - exact).abs();
  const auto bound = terms * (static_cast<double>(n + 1) * std::ldexp(1.0, -24)) + 1e-30;
  const double worst = (err / bound).max().item<double>();
  if (worst <= 1.0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "error up to " << worst << "x the rounding bound of " << n << "-term sums";
}

TEST(Conv2dKernels, BothWithinFloat32RoundingOfFloat64) {
  torch::manual_seed(7);
  struct Case {
    const char* what;
    std::vector<int64_t> x;
    int64_t out, kernel, stride, padding;
  };
  const Case cases[] = {{"8x8, 3x3 (by GEMM)", {2, 64, 8, 8}, 32, 3, 1, 1},
                        {"16x16 -> 8x8, stride 2 (by GEMM)", {1, 32, 16, 16}, 16, 3, 2, 1},
                        {"1x1 skip (by GEMM)", {2, 48, 8, 8}, 24, 1, 1, 0},
                        {"32x32 (at::conv2d)", {1, 16, 32, 32}, 16, 3, 1, 1}};
  for (const Case& c : cases) {
    const auto x = torch::randn(c.x);
    const auto w = torch::randn({c.out, c.x[1], c.kernel, c.kernel}) * 0.1;
    const auto b = torch::randn({c.out});
    const int64_t side = (c.x[2] + 2 * c.padding - c.kernel) / c.stride + 1;
    const auto g = torch::randn({c.x[0], c.out, side, side});
    const auto f64 = [](const torch::Tensor& t) { return t.to(torch::kDouble); };
    const auto [y64, dx64] = forward_backward(f64(x), f64(w), f64(b), f64(g), c.stride, c.padding);
    // Sums of |terms|: the same convolution of absolute values.
    const auto [y_terms, dx_terms] =
        forward_backward(f64(x).abs(), f64(w).abs(), f64(b).abs(), f64(g).abs(), c.stride, c.padding);
    const int64_t n_forward = c.x[1] * c.kernel * c.kernel, n_backward = c.out * c.kernel * c.kernel;
    for (const bool direct : {false, true}) {
      std::unique_ptr<ls::nn::DirectConvGuard> guard;
      if (direct) guard = std::make_unique<ls::nn::DirectConvGuard>();
      const auto [y, dx] = forward_backward(x, w, b, g, c.stride, c.padding);
      const std::string path = direct ? "at::conv2d" : "nn::conv2d's choice";
      EXPECT_TRUE(within_rounding(y, y64, y_terms, n_forward)) << c.what << ", " << path << ", output";
      EXPECT_TRUE(within_rounding(dx, dx64, dx_terms, n_backward)) << c.what << ", " << path << ", input gradient";
    }
  }
}

}  // namespace
