// UNet blocks against the reference formulas in unet_reference.h (float64, tight tolerances),
// their checkpoint names, and finite-difference gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/unet_blocks.h"
#include "support/support.h"
#include "unet_reference.h"

namespace {

namespace ref = ls::test::unet_ref;
using ls::models::BasicTransformerBlock;
using ls::models::CrossAttention;
using ls::models::Downsample;
using ls::models::FeedForward;
using ls::models::ResBlock;
using ls::models::SpatialTransformer;
using ls::models::Upsample;

std::vector<std::string> names(torch::nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& p : m.named_parameters()) out.push_back(p.key());
  return out;
}

// Float64 module with randomised norm parameters.
template <typename M>
M prepared(M m) {
  m->to(torch::kDouble);
  ref::randomize_vectors(*m);
  return m;
}

TEST(ResBlock, NamesFollowSgm) {
  ResBlock same(32, 16, 32), wider(32, 16, 64);
  std::vector<std::string> expected{"in_layers.0.weight",  "in_layers.0.bias",  "in_layers.2.weight",
                                    "in_layers.2.bias",    "emb_layers.1.weight", "emb_layers.1.bias",
                                    "out_layers.0.weight", "out_layers.0.bias", "out_layers.3.weight",
                                    "out_layers.3.bias"};
  EXPECT_EQ(names(*same), expected);
  expected.push_back("skip_connection.weight");
  expected.push_back("skip_connection.bias");
  EXPECT_EQ(names(*wider), expected);
  EXPECT_EQ(wider->named_parameters()["skip_connection.weight"].sizes(), (std::vector<int64_t>{64, 32, 1, 1}));
}

TEST(ResBlock, MatchesFormula) {
  torch::manual_seed(10);
  for (int64_t out_ch : {32, 64}) {
    auto block = prepared(ResBlock(32, 16, out_ch));
    auto x = torch::randn({2, 32, 5, 6}, torch::kDouble);
    auto emb = torch::randn({2, 16}, torch::kDouble);
    auto expected = ref::res_block(block->named_parameters(), "", x, emb);
    EXPECT_TRUE(ls::test::all_close(block(x, emb), expected, 1e-10, 1e-10)) << "out " << out_ch;
  }
}

TEST(ResBlock, Bfloat16StaysCloseToFloat32) {
  // Norms run in float32 (SGM's GroupNorm32); a large channel mean would lose the variance if
  // statistics were accumulated in bf16.
  torch::manual_seed(11);
  auto block = ResBlock(32, 16, 32);
  ref::randomize_vectors(*block);
  auto x = (torch::randn({1, 32, 4, 4}) * 30 + 100).to(torch::kBFloat16);
  auto emb = torch::randn({1, 16}).to(torch::kBFloat16);
  block->to(torch::kBFloat16);
  auto got = block(x, emb);
  block->to(torch::kFloat);
  auto expected = block(x.to(torch::kFloat), emb.to(torch::kFloat));
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  EXPECT_LT(ls::test::norm_rel_error(got, expected), 0.01);  // measured 0.0025
}

TEST(Downsample, StrideTwoPadOne) {
  torch::manual_seed(12);
  auto down = prepared(Downsample(8, 8));
  EXPECT_EQ(names(*down), (std::vector<std::string>{"op.weight", "op.bias"}));
  for (int64_t side : {6, 5}) {
    auto x = torch::randn({2, 8, side, side + 2}, torch::kDouble);
    auto got = down(x);
    EXPECT_EQ(got.size(2), (side + 1) / 2);
    EXPECT_TRUE(ls::test::all_close(got, ref::downsample(down->named_parameters(), "", x), 1e-12, 1e-12));
  }
}

TEST(Upsample, NearestTimesTwoThenConv) {
  torch::manual_seed(13);
  auto up = prepared(Upsample(8, 8));
  EXPECT_EQ(names(*up), (std::vector<std::string>{"conv.weight", "conv.bias"}));
  auto x = torch::randn({2, 8, 3, 4}, torch::kDouble);
  auto got = up(x);
  EXPECT_EQ(got.sizes(), (std::vector<int64_t>{2, 8, 6, 8}));
  EXPECT_TRUE(ls::test::all_close(got, ref::upsample(up->named_parameters(), "", x), 1e-12, 1e-12));
  // bf16 takes a float32 detour for the copy; the result must still be the same operation.
  up->to(torch::kBFloat16);
  auto xb = x.to(torch::kBFloat16);
  auto gotb = up(xb);
  up->to(torch::kDouble);
  auto expected_b = ref::upsample(up->named_parameters(), "", xb.to(torch::kDouble));
  EXPECT_TRUE(ls::test::all_close(gotb, expected_b, 0.02, 0.05));
}

TEST(CrossAttention, MatchesExplicitProjections) {
  torch::manual_seed(14);
  auto attn = prepared(CrossAttention(16, 12, 4, 4));
  EXPECT_EQ(names(*attn), (std::vector<std::string>{"to_q.weight", "to_k.weight", "to_v.weight",
                                                    "to_out.0.weight", "to_out.0.bias"}));
  auto x = torch::randn({2, 7, 16}, torch::kDouble);
  auto ctx = torch::randn({2, 5, 12}, torch::kDouble);
  auto expected = ref::attention(attn->named_parameters(), "", x, ctx, 4);
  EXPECT_TRUE(ls::test::all_close(attn(x, ctx), expected, 1e-12, 1e-12));

  auto self = prepared(CrossAttention(16, 16, 2, 8));
  EXPECT_TRUE(ls::test::all_close(self(x), ref::attention(self->named_parameters(), "", x, x, 2), 1e-12, 1e-12));
}

TEST(FeedForward, GegluWithExactGelu) {
  torch::manual_seed(15);
  auto ff = prepared(FeedForward(8));
  EXPECT_EQ(names(*ff), (std::vector<std::string>{"net.0.proj.weight", "net.0.proj.bias", "net.2.weight",
                                                  "net.2.bias"}));
  EXPECT_EQ(ff->named_parameters()["net.0.proj.weight"].sizes(), (std::vector<int64_t>{64, 8}));
  auto x = torch::randn({3, 5, 8}, torch::kDouble) * 2;
  EXPECT_TRUE(ls::test::all_close(ff(x), ref::feed_forward(ff->named_parameters(), "", x), 1e-12, 1e-12));
  // The tanh approximation differs by up to ~1e-3 per gate: make sure we are not using it.
  auto g = torch::linspace(-4, 4, 81, torch::kDouble);
  EXPECT_TRUE(ls::test::all_close(torch::gelu(g), ref::gelu_erf(g), 1e-14, 1e-14));
}

TEST(BasicTransformerBlock, ResidualStructure) {
  torch::manual_seed(16);
  auto block = prepared(BasicTransformerBlock(16, 2, 8, 12));
  auto ps = block->named_parameters();
  std::vector<std::string> expected_prefix{"attn1.to_q.weight", "attn1.to_k.weight", "attn1.to_v.weight",
                                           "attn1.to_out.0.weight", "attn1.to_out.0.bias",
                                           "ff.net.0.proj.weight", "ff.net.0.proj.bias", "ff.net.2.weight",
                                           "ff.net.2.bias", "attn2.to_q.weight"};
  auto got_names = names(*block);
  ASSERT_EQ(got_names.size(), 20u);
  EXPECT_EQ(std::vector<std::string>(got_names.begin(), got_names.begin() + 10), expected_prefix);
  EXPECT_EQ(got_names.back(), "norm3.bias");
  EXPECT_EQ(ps["attn2.to_k.weight"].sizes(), (std::vector<int64_t>{16, 12}));
  auto x = torch::randn({2, 6, 16}, torch::kDouble);
  auto ctx = torch::randn({2, 4, 12}, torch::kDouble);
  EXPECT_TRUE(ls::test::all_close(block(x, ctx), ref::transformer_block(ps, "", x, ctx, 2), 1e-11, 1e-11));
}

TEST(SpatialTransformer, LinearProjectionsAndTokenOrder) {
  torch::manual_seed(17);
  auto st = prepared(SpatialTransformer(32, 4, 8, 2, 12, true));
  auto ps = st->named_parameters();
  EXPECT_EQ(names(*st).front(), "norm.weight");
  EXPECT_EQ(ps["proj_in.weight"].sizes(), (std::vector<int64_t>{32, 32}));
  EXPECT_TRUE(ps.contains("transformer_blocks.1.norm3.bias"));
  EXPECT_EQ(names(*st).back(), "proj_out.bias");
  auto x = torch::randn({2, 32, 2, 3}, torch::kDouble);  // H != W catches a transposed token order
  auto ctx = torch::randn({2, 5, 12}, torch::kDouble);
  EXPECT_TRUE(ls::test::all_close(st(x, ctx), ref::spatial_transformer(ps, "", x, ctx, 4, 2), 1e-11, 1e-11));
}

TEST(SpatialTransformer, ConvProjectionsEqualLinearOnes) {
  torch::manual_seed(18);
  auto lin = prepared(SpatialTransformer(32, 4, 8, 1, 12, true));
  auto conv = prepared(SpatialTransformer(32, 4, 8, 1, 12, false));
  {
    torch::NoGradGuard no_grad;
    auto src = lin->named_parameters();
    for (auto& p : conv->named_parameters()) p.value().copy_(src[p.key()].view(p.value().sizes()));
  }
  EXPECT_EQ(conv->named_parameters()["proj_in.weight"].sizes(), (std::vector<int64_t>{32, 32, 1, 1}));
  auto x = torch::randn({1, 32, 3, 2}, torch::kDouble);
  auto ctx = torch::randn({1, 4, 12}, torch::kDouble);
  EXPECT_TRUE(ls::test::all_close(conv(x, ctx), lin(x, ctx), 1e-12, 1e-12));
}

TEST(UnetBlocksGradient, ResBlockFiniteDifferences) {
  torch::manual_seed(19);
  auto block = prepared(ResBlock(32, 8, 64));
  auto emb = torch::randn({1, 8}, torch::kDouble);
  auto x = torch::randn({1, 32, 3, 3}, torch::kDouble);
  EXPECT_TRUE(ls::test::gradcheck([&](const torch::Tensor& v) { return block(v, emb); }, x));
  EXPECT_TRUE(ls::test::gradcheck([&](const torch::Tensor& e) { return block(x, e); }, emb));
}

TEST(UnetBlocksGradient, TransformerBlockFiniteDifferences) {
  torch::manual_seed(20);
  auto block = prepared(BasicTransformerBlock(16, 2, 8, 8));
  auto x = torch::randn({1, 3, 16}, torch::kDouble);
  auto ctx = torch::randn({1, 4, 8}, torch::kDouble);
  EXPECT_TRUE(ls::test::gradcheck([&](const torch::Tensor& v) { return block(v, ctx); }, x));
  EXPECT_TRUE(ls::test::gradcheck([&](const torch::Tensor& c) { return block(x, c); }, ctx));
}

}  // namespace
