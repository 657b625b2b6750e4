// SDXL VAE: key names/shapes against the checkpoint fixture, each block against a plain-torch
// formula written here (ldm's ResnetBlock, AttnBlock as an explicit softmax, asymmetric-pad
// Downsample, nearest Upsample), finite-difference gradients, logvar clamp, shapes and order.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/vae.h"
#include "support/support.h"

namespace {

using ls::models::AutoencoderKL;
using ls::models::VaeConfig;

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

// ldm Normalize as its definition: per (batch, group of C/32 channels) mean and biased variance.
torch::Tensor group_norm_ref(const torch::Tensor& x, const ls::nn::GroupNorm& gn) {
  auto b = x.size(0), c = x.size(1);
  auto g = x.reshape({b, 32, -1});
  auto mean = g.mean(-1, true);
  auto var = (g - mean).pow(2).mean(-1, true);
  auto y = ((g - mean) / torch::sqrt(var + 1e-6)).reshape(x.sizes());
  return y * gn->weight.view({1, c, 1, 1}) + gn->bias.view({1, c, 1, 1});
}

torch::Tensor silu_ref(const torch::Tensor& x) { return x / (1 + torch::exp(-x)); }

torch::Tensor conv_ref(const torch::Tensor& x, const ls::nn::Conv2d& conv, int64_t pad) {
  return torch::conv2d(x, conv->weight, conv->bias, 1, pad);
}

// 1x1 conv as a channel matmul.
torch::Tensor pointwise_ref(const torch::Tensor& x, const ls::nn::Conv2d& conv) {
  auto w = conv->weight.flatten(1);  // [out, in]
  return torch::einsum("oc,bchw->bohw", {w, x}) + conv->bias.view({1, -1, 1, 1});
}

torch::Tensor resnet_ref(const torch::Tensor& x, const ls::models::VaeResnetBlock& blk) {
  auto h = conv_ref(silu_ref(group_norm_ref(x, blk->norm1)), blk->conv1, 1);
  h = conv_ref(silu_ref(group_norm_ref(h, blk->norm2)), blk->conv2, 1);
  auto skip = blk->nin_shortcut ? pointwise_ref(x, blk->nin_shortcut) : x;
  return skip + h;
}

// CompVis' AttnBlock: w[i, j] = softmax_j(q_i . k_j / sqrt(C)), out_i = sum_j w[i, j] v_j.
torch::Tensor attn_ref(const torch::Tensor& x, const ls::models::VaeAttnBlock& blk) {
  auto b = x.size(0), c = x.size(1);
  auto h = group_norm_ref(x, blk->norm);
  auto q = pointwise_ref(h, blk->q).reshape({b, c, -1});  // [B, C, N]
  auto k = pointwise_ref(h, blk->k).reshape({b, c, -1});
  auto v = pointwise_ref(h, blk->v).reshape({b, c, -1});
  auto s = torch::bmm(q.transpose(1, 2), k) / std::sqrt(double(c));  // [B, N(query), N(key)]
  auto e = torch::exp(s - std::get<0>(s.max(-1, true)));
  auto w = e / e.sum(-1, true);
  auto out = torch::bmm(v, w.transpose(1, 2)).reshape(x.sizes());  // [B, C, N]
  return x + pointwise_ref(out, blk->proj_out);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Random affine GroupNorm parameters too, so a swapped weight/bias or a missing affine shows;
// conv parameters keep torch's init, times scale.
void randomize_vae(torch::nn::Module& m, double scale = 1.0) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.named_parameters()) {
    auto& t = p.value();
    if (p.key().find("norm") != std::string::npos) {
      t.copy_(torch::randn(t.sizes(), t.options()) * 0.5 + (ends_with(p.key(), "weight") ? 1.0 : 0.0));
    } else {
      t.mul_(scale);
    }
  }
}

TEST(VaeKeys, FullSizeNamesAndShapesEqualCheckpointFixture) {
  auto expected = ls::test::fixture_key_shapes("vae_keys.txt", "first_stage_model.");
  ASSERT_EQ(expected.size(), 248u);

  ls::nn::SkipInitGuard skip;
  AutoencoderKL vae(VaeConfig{});
  std::map<std::string, std::vector<int64_t>> actual;
  int64_t count = 0;
  for (const auto& p : vae->named_parameters()) {
    actual[p.key()] = p.value().sizes().vec();
    count += p.value().numel();
  }
  for (const auto& [name, shape] : expected) {
    auto it = actual.find(name);
    if (it == actual.end()) {
      ADD_FAILURE() << "missing " << name;
    } else {
      EXPECT_EQ(it->second, shape) << name;
    }
  }
  for (const auto& [name, shape] : actual) EXPECT_TRUE(expected.count(name)) << "unexpected " << name;
  EXPECT_EQ(count, 83653863);
}

TEST(VaeConfigJson, RoundTripDefaultsAndUnknownField) {
  auto tiny = VaeConfig::tiny();
  nlohmann::json j = tiny;
  auto back = j.get<VaeConfig>();
  EXPECT_EQ(back.ch, 32);
  EXPECT_EQ(back.ch_mult, (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_EQ(back.num_res_blocks, 1);
  EXPECT_EQ(back.downscale(), 8);

  auto partial = nlohmann::json::parse(R"({"ch": 64})").get<VaeConfig>();
  EXPECT_EQ(partial.ch, 64);
  EXPECT_EQ(partial.ch_mult, (std::vector<int64_t>{1, 2, 4, 4}));
  EXPECT_DOUBLE_EQ(partial.scale_factor, 0.13025);

  EXPECT_THROW(nlohmann::json::parse(R"({"chan": 64})").get<VaeConfig>(), ls::Error);
  EXPECT_THROW(nlohmann::json::parse(R"({"ch_mult": "1,2"})").get<VaeConfig>(), ls::Error);
  VaeConfig bad;
  bad.ch = 48;
  EXPECT_THROW(AutoencoderKL{bad}, ls::Error);
}

TEST(VaeBlocks, ResnetBlockMatchesFormula) {
  torch::manual_seed(1);
  for (auto [cin, cout] : {std::pair<int64_t, int64_t>{32, 64}, {64, 64}}) {
    ls::models::VaeResnetBlock blk(cin, cout);
    blk->to(torch::kDouble);
    randomize_vae(*blk);
    EXPECT_EQ(bool(blk->nin_shortcut), cin != cout);
    auto x = torch::randn({2, cin, 5, 7}, kF64);
    EXPECT_TRUE(ls::test::all_close(blk(x), resnet_ref(x, blk), 1e-10, 1e-10)) << cin << "->" << cout;
  }
}

TEST(VaeBlocks, AttnBlockMatchesExplicitSoftmax) {
  torch::manual_seed(2);
  ls::models::VaeAttnBlock blk(64);
  blk->to(torch::kDouble);
  randomize_vae(*blk, 4.0);  // larger q/k so the softmax is far from uniform
  auto x = torch::randn({2, 64, 5, 6}, kF64);
  auto expected = attn_ref(x, blk);
  EXPECT_TRUE(ls::test::all_close(blk(x), expected, 1e-10, 1e-10));
  // float32 module against the float64 formula: the usual single-precision agreement.
  blk->to(torch::kFloat);
  EXPECT_TRUE(ls::test::all_close(blk(x.to(torch::kFloat)), expected, 1e-4, 1e-4));
}

TEST(VaeBlocks, QueryChunkedAttentionEqualsWhole) {
  torch::manual_seed(3);
  auto q = torch::randn({2, 37, 16}, kF64) * 2, k = torch::randn({2, 37, 16}, kF64) * 2;
  auto v = torch::randn({2, 37, 16}, kF64);
  auto whole = ls::models::vae_attention(q, k, v);
  auto chunked = ls::models::vae_attention(q, k, v, /*max_score_elements=*/2 * 37 * 5);  // 5 rows
  EXPECT_TRUE(ls::test::all_close(chunked, whole, 0, 1e-14));
  auto s = torch::matmul(q, k.transpose(1, 2)) / 4.0;  // sqrt(16)
  EXPECT_TRUE(ls::test::all_close(whole, torch::matmul(torch::softmax(s, -1), v), 1e-12, 1e-12));
}

TEST(VaeBlocks, DownsamplePadsBottomRightOnly) {
  torch::manual_seed(4);
  ls::models::VaeDownsample down(32);
  down->to(torch::kDouble);
  for (auto [h, w] : {std::pair<int64_t, int64_t>{8, 8}, {7, 10}}) {
    auto x = torch::randn({1, 32, h, w}, kF64);
    auto padded = torch::constant_pad_nd(x, {0, 1, 0, 1}, 0);  // right 1, bottom 1
    auto expected = torch::conv2d(padded, down->conv->weight, down->conv->bias, 2, torch::IntArrayRef{0});
    auto y = down(x);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 32, h / 2, w / 2}));
    EXPECT_TRUE(ls::test::all_close(y, expected, 1e-12, 1e-12));
    // torch's symmetric padding would shift the sampling grid: must differ.
    auto symmetric = torch::conv2d(x, down->conv->weight, down->conv->bias, 2, 1);
    EXPECT_GT((y - symmetric.slice(2, 0, h / 2).slice(3, 0, w / 2)).abs().max().item<double>(), 1e-3);
  }
}

TEST(VaeBlocks, UpsampleIsNearestThenConv) {
  torch::manual_seed(5);
  ls::models::VaeUpsample up(32);
  up->to(torch::kDouble);
  auto x = torch::randn({2, 32, 3, 5}, kF64);
  auto nearest = x.repeat_interleave(2, 2).repeat_interleave(2, 3);  // [2, 32, 6, 10]
  namespace F = torch::nn::functional;
  auto interp = F::interpolate(x, F::InterpolateFuncOptions()
                                      .scale_factor(std::vector<double>{2.0, 2.0})
                                      .mode(torch::kNearest));
  EXPECT_TRUE(torch::equal(ls::models::upsample_nearest_x2(x), nearest));
  EXPECT_TRUE(torch::equal(interp, nearest));
  EXPECT_TRUE(ls::test::all_close(up(x), conv_ref(nearest, up->conv, 1), 1e-12, 1e-12));
}

TEST(VaeBlocks, FiniteDifferenceGradients) {
  torch::manual_seed(6);
  ls::models::VaeResnetBlock res(32, 64);
  res->to(torch::kDouble);
  randomize_vae(*res);
  EXPECT_TRUE(ls::test::gradcheck([&](const torch::Tensor& x) { return res(x); },
                                  torch::randn({1, 32, 3, 4}, kF64)));
  ls::models::VaeAttnBlock attn(32);
  attn->to(torch::kDouble);
  randomize_vae(*attn, 3.0);
  EXPECT_TRUE(ls::test::gradcheck([&](const torch::Tensor& x) { return attn(x); },
                                  torch::randn({1, 32, 3, 3}, kF64)));
}

TEST(Vae, TinyShapesSquareAndNonSquare) {
  torch::manual_seed(7);
  torch::NoGradGuard no_grad;
  AutoencoderKL vae(VaeConfig::tiny());
  for (auto [h, w] : {std::pair<int64_t, int64_t>{64, 64}, {64, 96}}) {
    auto image = torch::rand({2, 3, h, w}) * 2 - 1;
    auto m = vae->encode(image);
    EXPECT_EQ(m.mean.sizes(), (std::vector<int64_t>{2, 4, h / 8, w / 8}));
    EXPECT_EQ(m.logvar.sizes(), m.mean.sizes());
    auto out = vae->decode(m.mean);
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 3, h, w}));
    EXPECT_TRUE(out.isfinite().all().item<bool>());
  }
  EXPECT_THROW(vae->encode(torch::zeros({1, 4, 64, 64})), ls::Error);
  EXPECT_THROW(vae->decode(torch::zeros({1, 3, 8, 8})), ls::Error);
  EXPECT_THROW(vae->decode(torch::zeros({4, 8, 8})), ls::Error);
}

TEST(Vae, MomentsSplitAndLogvarClamped) {
  torch::manual_seed(8);
  torch::NoGradGuard no_grad;
  AutoencoderKL vae(VaeConfig::tiny());
  auto image = torch::rand({1, 3, 32, 48}) * 2 - 1;
  auto raw = vae->quant_conv(vae->encoder(image));  // [1, 8, 4, 6]
  auto m = vae->encode(image);
  EXPECT_TRUE(torch::equal(m.mean, raw.slice(1, 0, 4)));
  EXPECT_TRUE(torch::equal(m.logvar, raw.slice(1, 4, 8).clamp(-30, 20)));
  // A constant quant_conv output drives logvar past both bounds.
  vae->quant_conv->weight.zero_();
  vae->quant_conv->bias.copy_(torch::tensor({1.5f, -2.f, 0.f, 3.f, 50.f, -50.f, 19.5f, -29.5f}));
  m = vae->encode(image);
  for (int64_t c = 0; c < 4; ++c) {
    float mean_c[] = {1.5f, -2.f, 0.f, 3.f}, logvar_c[] = {20.f, -30.f, 19.5f, -29.5f};
    EXPECT_TRUE(torch::equal(m.mean[0][c], torch::full({4, 6}, mean_c[c])));
    EXPECT_TRUE(torch::equal(m.logvar[0][c], torch::full({4, 6}, logvar_c[c])));
  }
}

TEST(Vae, DecoderRunsUpLevelsFromLastIndexToFirst) {
  torch::manual_seed(9);
  torch::NoGradGuard no_grad;
  auto cfg = VaeConfig::tiny();
  AutoencoderKL vae(cfg);
  vae->to(torch::kDouble);
  randomize_vae(*vae);
  auto& dec = vae->decoder;
  const auto n_levels = static_cast<int64_t>(cfg.ch_mult.size());
  // up[i] works at ch * ch_mult[i] channels; up[0] has no upsample, the others do.
  for (int64_t i = 0; i < n_levels; ++i) {
    EXPECT_EQ(dec->levels[i]->blocks.back()->conv2->weight.size(0), cfg.ch * cfg.ch_mult[i]);
    EXPECT_EQ(dec->levels[i]->blocks.size(), size_t(cfg.num_res_blocks + 1));
    EXPECT_EQ(bool(dec->levels[i]->upsample), i != 0);
    EXPECT_TRUE(dec->levels[i].ptr() == dec->up[i]);
  }
  auto latent = torch::randn({1, 4, 3, 5}, kF64);
  auto h = dec->mid->block_2(dec->mid->attn_1(dec->mid->block_1(dec->conv_in(vae->post_quant_conv(latent)))));
  for (int64_t i = n_levels - 1; i >= 0; --i) {
    for (auto& blk : dec->levels[i]->blocks) h = resnet_ref(h, blk);
    if (i != 0) h = conv_ref(h.repeat_interleave(2, 2).repeat_interleave(2, 3), dec->levels[i]->upsample->conv, 1);
  }
  h = conv_ref(silu_ref(group_norm_ref(h, dec->norm_out)), dec->conv_out, 1);  // [1, 3, 24, 40]
  EXPECT_TRUE(ls::test::all_close(vae->decode(latent), h, 1e-10, 1e-10));
}

TEST(Vae, ComputesInParameterDtype) {
  torch::manual_seed(10);
  torch::NoGradGuard no_grad;
  AutoencoderKL vae(VaeConfig::tiny());
  auto latent = torch::randn({1, 4, 2, 3});
  auto out32 = vae->decode(latent);
  vae->to(torch::kDouble);
  auto out64 = vae->decode(latent);  // float input, double parameters
  EXPECT_EQ(out64.scalar_type(), torch::kDouble);
  EXPECT_EQ(vae->encode(torch::zeros({1, 3, 16, 24})).mean.scalar_type(), torch::kDouble);
  EXPECT_TRUE(ls::test::all_close(out32, out64, 1e-4, 1e-5));
}

}  // namespace
