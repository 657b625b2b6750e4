// Attention against an explicit per-element formula; timestep embedding against hand values.
#include <cmath>

#include "nn/functional.h"
#include "nn/layers.h"
#include "support/support.h"

namespace {

TEST(Attention, MatchesLoopFormula) {
  torch::manual_seed(0);
  int64_t b = 2, n = 5, m = 7, heads = 3, d = 4;
  auto q = torch::randn({b, n, heads * d}, torch::kDouble);
  auto k = torch::randn({b, m, heads * d}, torch::kDouble);
  auto v = torch::randn({b, m, heads * d}, torch::kDouble);
  auto out = ls::nn::attention(q, k, v, heads);
  auto expected = torch::zeros_like(out);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < n; ++i) {
        std::vector<double> s(m);
        double mx = -1e300, z = 0;
        for (int64_t j = 0; j < m; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < d; ++c)
            dot += q[bi][i][h * d + c].item<double>() * k[bi][j][h * d + c].item<double>();
          s[j] = dot / std::sqrt(double(d));
          mx = std::max(mx, s[j]);
        }
        for (auto& x : s) z += (x = std::exp(x - mx));
        for (int64_t c = 0; c < d; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < m; ++j) acc += s[j] / z * v[bi][j][h * d + c].item<double>();
          expected[bi][i][h * d + c] = acc;
        }
      }
  EXPECT_TRUE(ls::test::all_close(out, expected, 1e-10, 1e-12));
}

TEST(Attention, CausalIgnoresFuture) {
  torch::manual_seed(1);
  auto q = torch::randn({1, 6, 8}, torch::kDouble);
  auto k = torch::randn({1, 6, 8}, torch::kDouble);
  auto v = torch::randn({1, 6, 8}, torch::kDouble);
  auto out = ls::nn::attention(q, k, v, 2, true);
  // Row i must equal non-causal attention over the first i+1 keys.
  for (int64_t i = 0; i < 6; ++i) {
    auto row = ls::nn::attention_math(q.slice(1, i, i + 1), k.slice(1, 0, i + 1), v.slice(1, 0, i + 1), 2);
    EXPECT_TRUE(ls::test::all_close(out.slice(1, i, i + 1), row, 1e-12, 1e-12)) << "row " << i;
  }
}

// The fused kernel against the explicit formula in float64 at the shapes the models use. Both
// sum D products per score and M weighted values per output; float64 rounding (u = 1.1e-16) then
// bounds the difference by about (D + M) u |values| ~ 1e-13 here, under the 1e-12 asked for.
TEST(Attention, FusedEqualsExplicitInFloat64) {
  torch::manual_seed(3);
  struct Case {
    const char* what;
    int64_t b, n, m, heads, d;
    bool causal;
  };
  const Case cases[] = {{"unet self-attention", 2, 256, 256, 5, 64, false},
                        {"unet cross-attention", 2, 256, 77, 5, 64, false},
                        {"clip text, causal", 2, 77, 77, 12, 64, true},
                        {"vae mid-block, one head", 1, 64, 64, 1, 512, false}};
  for (const Case& c : cases) {
    auto q = torch::randn({c.b, c.n, c.heads * c.d}, torch::kDouble);
    auto k = torch::randn({c.b, c.m, c.heads * c.d}, torch::kDouble);
    auto v = torch::randn({c.b, c.m, c.heads * c.d}, torch::kDouble);
    auto fused = ls::nn::attention(q, k, v, c.heads, c.causal);
    auto explicit_ = ls::nn::attention_math(q, k, v, c.heads, c.causal);
    EXPECT_LE(ls::test::norm_rel_error(fused, explicit_), 1e-12) << c.what;
  }
}

TEST(Attention, GradientMatchesFiniteDifferences) {
  torch::manual_seed(2);
  auto k = torch::randn({1, 3, 4}, torch::kDouble);
  auto v = torch::randn({1, 3, 4}, torch::kDouble);
  auto q = torch::randn({1, 2, 4}, torch::kDouble);
  EXPECT_TRUE(ls::test::gradcheck([&](const torch::Tensor& x) { return ls::nn::attention(x, k, v, 2); }, q));
}

TEST(TimestepEmbedding, HandValues) {
  auto t = torch::tensor({0.0, 1.0, 500.0});
  auto e = ls::nn::timestep_embedding(t, 6);  // half 3: f = 1, 10000^(-1/3), 10000^(-2/3)
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{3, 6}));
  for (int64_t i = 0; i < 3; ++i) {
    double tv = t[i].item<double>();
    for (int64_t j = 0; j < 3; ++j) {
      double f = std::exp(-std::log(10000.0) * j / 3.0);
      EXPECT_NEAR(e[i][j].item<double>(), std::cos(tv * f), 2e-4);
      EXPECT_NEAR(e[i][j + 3].item<double>(), std::sin(tv * f), 2e-4);
    }
  }
  EXPECT_EQ(ls::nn::timestep_embedding(t, 7).size(1), 7);
}

TEST(Layers, LinearAdapterAddsDelta) {
  struct Twice : ls::nn::Adapter {
    torch::Tensor delta(const torch::Tensor& x) override { return 2 * x; }
  };
  ls::nn::Linear lin(4, 4);
  auto x = torch::randn({3, 4});
  auto base = lin(x);
  lin->add_adapter(std::make_shared<Twice>());
  EXPECT_TRUE(ls::test::all_close(lin(x), base + 2 * x, 0, 1e-6));
  std::vector<std::string> names;
  for (auto& p : lin->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "bias"}));
}

TEST(Layers, GroupNormUpcastMatchesFloat) {
  ls::nn::GroupNorm gn(2, 4, 1e-5, true);
  auto x = torch::randn({2, 4, 3, 3});
  auto ref = torch::group_norm(x, 2, {}, {}, 1e-5);
  EXPECT_TRUE(ls::test::all_close(gn(x), ref, 1e-6, 1e-6));
}

}  // namespace
