// SdxlConditioner and size_embedding: context = cat of both penultimate states, pooled from TE2,
// kohya's long-prompt windows, and y's layout against hand-computed cos/sin values.
#include <chrono>
#include <cmath>
#include <iostream>

#include "core/error.h"
#include "models/sdxl_conditioner.h"
#include "support/support.h"

namespace {

using ls::models::ClipTextConfig;
using ls::models::ClipTextModel;
using ls::models::SdxlConditioner;

/// One window per row: start, `len` random tokens, end, then pad.
torch::Tensor window_ids(int64_t batch, int64_t len, int64_t pad) {
  auto ids = torch::full({batch, 77}, pad, torch::kLong);
  for (int64_t b = 0; b < batch; ++b) {
    int64_t n = std::min<int64_t>(75, len + 20 * b);
    ids[b][0] = 49406;
    ids.index_put_({b, torch::indexing::Slice(1, n + 1)}, torch::randint(1, 49406, {n}, torch::kLong));
    ids[b][n + 1] = 49407;
  }
  return ids;
}

TEST(SizeEmbedding, HandValuesAtKnownColumns) {
  torch::manual_seed(31);
  auto pooled = torch::randn({2, 4});
  auto original = torch::tensor({{1024, 1024}, {768, 1344}}, torch::kLong);
  auto crop = torch::tensor({{0, 0}, {32, 16}}, torch::kLong);
  auto target = torch::tensor({{1024, 1024}, {1024, 1024}}, torch::kLong);
  auto y = ls::models::size_embedding(pooled, original, crop, target);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 4 + 6 * 256}));
  EXPECT_EQ(y.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(y.slice(1, 0, 4), pooled));
  // Hand values (Python math): column P + 256 k + j is cos(v_k f_j), + 128 is sin; f_j = 10000^(-j/128).
  const double tol = 2e-4;  // float32 arguments up to 1344: rounding ~1e-4 rad
  EXPECT_NEAR(y[0][4 + 0].item<double>(), 0.9873536182198484, tol);            // orig h 1024, cos f0
  EXPECT_NEAR(y[0][4 + 128].item<double>(), -0.15853338004399595, tol);        // sin f0
  EXPECT_NEAR(y[0][4 + 1].item<double>(), -0.5376103157308803, tol);           // cos f1
  EXPECT_NEAR(y[0][4 + 128 + 64].item<double>(), -0.727877870349733, tol);     // sin f64
  EXPECT_NEAR(y[1][4 + 0].item<double>(), 0.11912027622436312, tol);           // orig h 768
  EXPECT_NEAR(y[1][4 + 256 + 127].item<double>(), 0.9895884955438958, tol);    // orig w 1344, cos f127
  EXPECT_NEAR(y[1][4 + 256 + 255].item<double>(), 0.14392570822187697, tol);   // sin f127
  EXPECT_NEAR(y[1][4 + 512 + 5].item<double>(), -0.9429445532682118, tol);     // crop top 32, cos f5
  EXPECT_NEAR(y[0][4 + 512 + 7].item<double>(), 1.0, 1e-7);                    // crop 0: cos 0
  EXPECT_NEAR(y[0][4 + 768 + 128 + 9].item<double>(), 0.0, 1e-7);              // crop left 0: sin 0
  EXPECT_NEAR(y[1][4 + 1280 + 0].item<double>(), 0.9873536182198484, tol);     // target w 1024
  // Every column against the formula.
  double v[2][6] = {{1024, 1024, 0, 0, 1024, 1024}, {768, 1344, 32, 16, 1024, 1024}};
  auto expected = torch::empty({2, 6 * 256}, torch::kDouble);
  for (int b = 0; b < 2; ++b)
    for (int k = 0; k < 6; ++k)
      for (int j = 0; j < 128; ++j) {
        double a = v[b][k] * std::exp(-std::log(10000.0) * j / 128.0);
        expected[b][256 * k + j] = std::cos(a);
        expected[b][256 * k + 128 + j] = std::sin(a);
      }
  EXPECT_TRUE(ls::test::all_close(y.slice(1, 4), expected, 0, tol));
  // [2] sizes apply to every sample; the output follows pooled's dtype.
  auto y1 = ls::models::size_embedding(pooled.to(torch::kDouble), torch::tensor({1024, 1024}),
                                       torch::tensor({0, 0}), torch::tensor({1024.0, 1024.0}));
  EXPECT_EQ(y1.scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::equal(y1[1].slice(0, 4).to(torch::kFloat), y[0].slice(0, 4)));
  EXPECT_THROW(ls::models::size_embedding(pooled, torch::zeros({3, 2}), crop, target), ls::Error);
  EXPECT_THROW(ls::models::size_embedding(pooled, torch::zeros({2, 3}), crop, target), ls::Error);
}

TEST(SdxlConditioner, ContextIsBothPenultimateStatesAndPooledIsTe2) {
  torch::manual_seed(32);
  ClipTextModel te1(ClipTextConfig::tiny_te1()), te2(ClipTextConfig::tiny_te2());
  SdxlConditioner cond(te1, te2);
  auto ids_l = window_ids(2, 6, 49407), ids_g = ids_l.clone();
  ids_g.masked_fill_(torch::cumsum((ids_g == 49407).to(torch::kLong), 1) > 1, 0);  // TE2 pads with 0
  auto e = cond.encode(ids_l, ids_g);
  auto o1 = te1(ids_l), o2 = te2(ids_g);
  ASSERT_EQ(e.context.sizes(), (std::vector<int64_t>{2, 77, 64}));
  EXPECT_TRUE(ls::test::all_close(e.hidden_l, o1.penultimate, 1e-6, 1e-6));
  EXPECT_TRUE(ls::test::all_close(e.hidden_g, o2.penultimate, 1e-6, 1e-6));
  EXPECT_TRUE(torch::equal(e.context.slice(2, 0, 32), e.hidden_l));
  EXPECT_TRUE(torch::equal(e.context.slice(2, 32, 64), e.hidden_g));
  EXPECT_TRUE(ls::test::all_close(e.pooled_g, o2.pooled, 1e-6, 1e-6));
  EXPECT_THROW(cond.encode(ids_l, ids_g.slice(1, 0, 76)), ls::Error);
  EXPECT_THROW(cond.encode(ids_l.slice(1, 0, 76), ids_g.slice(1, 0, 76)), ls::Error);
  EXPECT_THROW(SdxlConditioner(te1, te1), ls::Error);  // TE2 needs text_projection
}

TEST(SdxlConditioner, JoinWindowsKeepsStartBodiesAndFinalEnd) {
  auto h = torch::arange(2 * 231, torch::kDouble).view({2, 231, 1});
  auto j = ls::models::join_windows(h, 77);
  ASSERT_EQ(j.sizes(), (std::vector<int64_t>{2, 227, 1}));
  std::vector<double> expect = {0};
  for (int w = 0; w < 3; ++w)
    for (int t = 1; t <= 75; ++t) expect.push_back(77 * w + t);
  expect.push_back(230);
  auto e = torch::tensor(expect, torch::kDouble).view({1, 227, 1});
  EXPECT_TRUE(torch::equal(j.slice(0, 0, 1), e));
  EXPECT_TRUE(torch::equal(j.slice(0, 1, 2), e + 231));
  EXPECT_TRUE(torch::equal(ls::models::join_windows(h.slice(1, 0, 77), 77), h.slice(1, 0, 77)));
}

TEST(SdxlConditioner, LongPromptWindowsEncodedSeparately) {
  torch::manual_seed(33);
  ClipTextModel te1(ClipTextConfig::tiny_te1()), te2(ClipTextConfig::tiny_te2());
  SdxlConditioner cond(te1, te2);
  // Sample b: window 0 full, window 1 partly filled.
  auto w0 = window_ids(2, 75, 49407), w1 = window_ids(2, 10, 49407);
  auto ids = torch::cat({w0, w1}, 1);  // [2, 154]
  auto e = cond.encode(ids, ids);
  ASSERT_EQ(e.context.sizes(), (std::vector<int64_t>{2, 152, 64}));
  auto s0 = te1(w0).penultimate, s1 = te1(w1).penultimate;
  EXPECT_TRUE(ls::test::all_close(e.hidden_l.slice(1, 0, 76), s0.slice(1, 0, 76), 1e-6, 1e-6));
  EXPECT_TRUE(ls::test::all_close(e.hidden_l.slice(1, 76, 151), s1.slice(1, 1, 76), 1e-6, 1e-6));
  EXPECT_TRUE(ls::test::all_close(e.hidden_l.slice(1, 151, 152), s1.slice(1, 76, 77), 1e-6, 1e-6));
  auto g1 = te2(w1).penultimate;
  EXPECT_TRUE(ls::test::all_close(e.hidden_g.slice(1, 76, 151), g1.slice(1, 1, 76), 1e-6, 1e-6));
  EXPECT_TRUE(ls::test::all_close(e.pooled_g, te2(w0).pooled, 1e-6, 1e-6));  // first window
  EXPECT_FALSE(torch::allclose(e.pooled_g, te2(w1).pooled, 1e-3, 1e-3));
}

TEST(FullSdxlConditioner, ShapesAtSdxlSize) {
  torch::manual_seed(34);
  ClipTextModel te1{nullptr}, te2{nullptr};
  {
    ls::nn::SkipInitGuard skip;  // values do not matter here; random init of 817M weights takes ~50 s
    te1 = ClipTextModel(ClipTextConfig::sdxl_te1());
    te2 = ClipTextModel(ClipTextConfig::sdxl_te2());
  }
  torch::NoGradGuard no_grad;
  for (auto* m : {te1.ptr().get(), te2.ptr().get()})
    for (auto& p : m->parameters()) p.fill_(0.01);
  SdxlConditioner cond(te1, te2);
  auto ids_l = window_ids(1, 10, 49407);
  auto start = std::chrono::steady_clock::now();
  auto e = cond.encode(ids_l, ids_l);
  std::cout << "[ TIMING   ] SDXL TE1+TE2 encode, 1 x 77 tokens, fp32: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";
  EXPECT_EQ(e.context.sizes(), (std::vector<int64_t>{1, 77, 2048}));
  EXPECT_EQ(e.pooled_g.sizes(), (std::vector<int64_t>{1, 1280}));
  auto y = ls::models::size_embedding(e.pooled_g, torch::tensor({1024, 1024}), torch::tensor({0, 0}),
                                      torch::tensor({1024, 1024}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 2816}));
}

}  // namespace
