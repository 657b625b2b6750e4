// ClipTextModel: names and shapes against the SDXL checkpoint key list (fixtures/keys/te_keys.txt),
// an encoder layer against the written-out formula, causality, pooling position, gradients, config JSON.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/clip_text.h"
#include "models/key_map_open_clip.h"
#include "support/support.h"

namespace {

using ls::models::ClipTextConfig;
using ls::models::ClipTextModel;
using KeyShapes = std::map<std::string, std::vector<int64_t>>;

KeyShapes read_te_keys(const std::string& prefix) { return ls::test::fixture_key_shapes("te_keys.txt", prefix); }

KeyShapes shapes_of(const ls::models::NamedTensors& tensors) {
  KeyShapes out;
  for (const auto& [k, v] : tensors) out[k] = v.sizes().vec();
  return out;
}

ls::models::NamedTensors params_of(torch::nn::Module& m) {
  ls::models::NamedTensors out;
  for (const auto& item : m.named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

TEST(ClipTextKeys, Te1NamesAndShapesEqualCheckpoint) {
  ls::nn::SkipInitGuard skip;
  ClipTextModel te1(ClipTextConfig::sdxl_te1());
  auto expected = read_te_keys("conditioner.embedders.0.transformer.");
  ASSERT_EQ(expected.erase("text_model.embeddings.position_ids"), 1u);  // buffer, accepted and ignored
  EXPECT_EQ(expected.size(), 196u);
  EXPECT_EQ(shapes_of(params_of(*te1)), expected);
}

TEST(ClipTextKeys, Te2NamesAndShapesEqualCheckpointAfterFusing) {
  ls::nn::SkipInitGuard skip;
  ClipTextModel te2(ClipTextConfig::sdxl_te2());
  // Meta tensors carry the shapes without allocating the 630 MB the fused in_proj would take.
  ls::models::NamedTensors meta;
  for (const auto& [k, v] : params_of(*te2)) meta.emplace_back(k, torch::empty(v.sizes(), torch::kMeta));
  auto expected = read_te_keys("conditioner.embedders.1.model.");
  EXPECT_EQ(expected.size(), 32u * 12 + 6);
  EXPECT_EQ(shapes_of(ls::models::hf_to_open_clip(meta)), expected);
}

TEST(ClipTextConfig, JsonRoundTripAndErrors) {
  auto c = ClipTextConfig::sdxl_te2();
  nlohmann::json j = c;
  auto back = j.get<ClipTextConfig>();
  EXPECT_EQ(nlohmann::json(back), j);
  EXPECT_EQ(back.width, 1280);
  EXPECT_EQ(back.activation, "gelu");
  // Absent fields keep their defaults (TE1's).
  auto partial = nlohmann::json{{"layers", 4}}.get<ClipTextConfig>();
  EXPECT_EQ(partial.layers, 4);
  EXPECT_EQ(partial.width, 768);
  EXPECT_EQ(partial.projection_dim, 0);
  EXPECT_THROW(nlohmann::json({{"widht", 4}}).get<ClipTextConfig>(), ls::Error);
  EXPECT_THROW(nlohmann::json({{"width", "wide"}}).get<ClipTextConfig>(), ls::Error);
  auto bad = ClipTextConfig::tiny_te1();
  bad.heads = 5;
  EXPECT_THROW(ClipTextModel{bad}, ls::Error);
  bad = ClipTextConfig::tiny_te1();
  bad.activation = "relu";
  EXPECT_THROW(ClipTextModel{bad}, ls::Error);
}

torch::Tensor explicit_layer_norm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto mean = x.mean(-1, true);
  auto var = (x - mean).pow(2).mean(-1, true);  // biased, as torch.nn.LayerNorm
  return (x - mean) / torch::sqrt(var + 1e-5) * w + b;
}

/// One CLIPEncoderLayer written out: pre-norm residual attention with a causal softmax, then MLP.
torch::Tensor explicit_layer(ls::models::ClipEncoderLayerImpl& l, const torch::Tensor& x, int64_t heads,
                             bool quick) {
  auto lin = [](const torch::Tensor& t, ls::nn::LinearImpl& m) { return torch::matmul(t, m.weight.t()) + m.bias; };
  int64_t b = x.size(0), n = x.size(1), c = x.size(2), d = c / heads;
  auto h = explicit_layer_norm(x, l.layer_norm1->weight, l.layer_norm1->bias);
  auto q = lin(h, *l.self_attn->q_proj) * std::pow(double(d), -0.5);  // HF scales q
  auto k = lin(h, *l.self_attn->k_proj);
  auto v = lin(h, *l.self_attn->v_proj);
  auto split = [&](const torch::Tensor& t) { return t.view({b, n, heads, d}).permute({0, 2, 1, 3}); };
  auto scores = torch::matmul(split(q), split(k).transpose(-1, -2));  // [B, H, N, N]
  auto future = torch::ones({n, n}, torch::kBool).triu(1);
  scores = scores.masked_fill(future, -INFINITY);
  auto e = torch::exp(scores - std::get<0>(scores.max(-1, true)));
  auto attn = torch::matmul(e / e.sum(-1, true), split(v)).permute({0, 2, 1, 3}).reshape({b, n, c});
  auto x1 = x + lin(attn, *l.self_attn->out_proj);
  auto m = lin(explicit_layer_norm(x1, l.layer_norm2->weight, l.layer_norm2->bias), *l.mlp->fc1);
  m = quick ? m / (1 + torch::exp(-1.702 * m)) : 0.5 * m * (1 + torch::erf(m / std::sqrt(2.0)));
  return x1 + lin(m, *l.mlp->fc2);
}

void randomize(torch::nn::Module& m, double scale = 0.3) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.copy_(torch::randn_like(p) * scale + (p.dim() == 1 ? 0.1 : 0.0));
}

TEST(ClipEncoderLayer, MatchesWrittenOutFormula) {
  for (bool te1 : {true, false}) {
    torch::manual_seed(te1 ? 10 : 11);
    auto config = te1 ? ClipTextConfig::tiny_te1() : ClipTextConfig::tiny_te2();
    ls::models::ClipEncoderLayer layer(config);
    layer->to(torch::kDouble);
    randomize(*layer);
    auto x = torch::randn({2, 7, config.width}, torch::kDouble);
    auto expected = explicit_layer(*layer, x, config.heads, te1);
    EXPECT_TRUE(ls::test::all_close(layer(x), expected, 1e-12, 1e-12)) << (te1 ? "quick_gelu" : "gelu");
  }
}

TEST(ClipTextModel, OutputsFollowTheLayerStack) {
  torch::manual_seed(12);
  ClipTextModel model(ClipTextConfig::tiny_te2());
  model->to(torch::kDouble);
  randomize(*model);
  auto ids = torch::randint(1, 49406, {2, 77}, torch::kLong);
  auto out = model(ids);
  ASSERT_EQ(out.penultimate.scalar_type(), torch::kDouble);  // computes in the parameters' dtype
  auto& tm = *model->text_model;
  auto x = tm.embeddings->token_embedding->weight.index({ids}) + tm.embeddings->position_embedding->weight;
  auto& layers = tm.encoder->layer_list;
  for (size_t i = 0; i + 1 < layers.size(); ++i) x = explicit_layer(*layers[i], x, 4, false);
  EXPECT_TRUE(ls::test::all_close(out.penultimate, x, 1e-12, 1e-12));
  x = explicit_layer(*layers.back(), x, 4, false);
  auto last = explicit_layer_norm(x, tm.final_layer_norm->weight, tm.final_layer_norm->bias);
  EXPECT_TRUE(ls::test::all_close(out.last, last, 1e-12, 1e-12));
  // No end token here: the pooled row is the largest id's.
  auto rows = torch::arange(2);
  auto pooled = torch::matmul(last.index({rows, ids.argmax(1)}), model->text_projection);
  EXPECT_TRUE(ls::test::all_close(out.pooled, pooled, 1e-12, 1e-12));
  auto short_ids = ids.slice(1, 0, 10);  // fewer than 77 tokens use the first positions
  EXPECT_TRUE(ls::test::all_close(model(short_ids).penultimate, out.penultimate.slice(1, 0, 10), 1e-12, 1e-12));
  auto skipped = model->forward(ids, /*penultimate_only=*/true);
  EXPECT_TRUE(torch::equal(skipped.penultimate, out.penultimate));
  EXPECT_FALSE(skipped.last.defined());
  EXPECT_THROW(model(torch::zeros({1, 78}, torch::kLong)), ls::Error);
}

TEST(ClipTextModel, CausalFutureTokensDoNotChangeThePast) {
  torch::manual_seed(13);
  ClipTextModel model(ClipTextConfig::tiny_te1());
  auto ids = torch::randint(1, 49406, {1, 77}, torch::kLong);
  auto a = model(ids);
  for (int64_t i : {0, 5, 40, 75}) {
    auto changed = ids.clone();
    changed.slice(1, i + 1) = torch::randint(1, 49406, {1, 76 - i}, torch::kLong);
    auto b = model(changed);
    EXPECT_TRUE(torch::equal(a.penultimate.slice(1, 0, i + 1), b.penultimate.slice(1, 0, i + 1))) << i;
    EXPECT_TRUE(torch::equal(a.last.slice(1, 0, i + 1), b.last.slice(1, 0, i + 1))) << i;
    EXPECT_FALSE(torch::allclose(a.last.slice(1, i + 1), b.last.slice(1, i + 1))) << i;
  }
}

TEST(ClipTextModel, PooledIsTheFirstEndToken) {
  torch::manual_seed(14);
  // TE1 pads with the end token 49407: the first occurrence is the real end.
  ClipTextModel te1(ClipTextConfig::tiny_te1());
  auto ids1 = torch::full({2, 77}, 49407, torch::kLong);
  ids1[0][0] = 49406, ids1[0][1] = 320, ids1[0][2] = 1125;  // end at 3
  ids1[1][0] = 49406;                                      // end at 1
  auto o1 = te1(ids1);
  EXPECT_TRUE(torch::equal(ClipTextModel::Impl::pool_index(ids1), torch::tensor({3, 1}, torch::kLong)));
  EXPECT_TRUE(torch::equal(o1.pooled[0], o1.last[0][3]));
  EXPECT_TRUE(torch::equal(o1.pooled[1], o1.last[1][1]));
  // TE2 pads with 0; pooled goes through text_projection (x @ P).
  ClipTextModel te2(ClipTextConfig::tiny_te2());
  auto ids2 = torch::zeros({2, 77}, torch::kLong);
  ids2[0][0] = 49406, ids2[0][1] = 320, ids2[0][2] = 49407;
  for (int64_t j = 0; j < 76; ++j) ids2[1][j] = j ? 1000 + j : 49406;
  ids2[1][76] = 49407;
  auto o2 = te2(ids2);
  EXPECT_TRUE(torch::equal(ClipTextModel::Impl::pool_index(ids2), torch::tensor({2, 76}, torch::kLong)));
  EXPECT_TRUE(ls::test::all_close(o2.pooled[0], torch::matmul(o2.last[0][2], te2->text_projection), 1e-6, 1e-6));
  EXPECT_TRUE(ls::test::all_close(o2.pooled[1], torch::matmul(o2.last[1][76], te2->text_projection), 1e-6, 1e-6));
  EXPECT_FALSE(torch::allclose(o2.pooled[0], torch::matmul(te2->text_projection, o2.last[0][2]), 1e-3, 1e-3));
}

struct MatrixAdapter : ls::nn::Adapter {
  torch::Tensor w;
  torch::Tensor delta(const torch::Tensor& x) override { return torch::matmul(x, w.t()); }
};

TEST(ClipEncoderLayer, GradientsMatchFiniteDifferences) {
  torch::manual_seed(15);
  ls::models::ClipEncoderLayer layer(ClipTextConfig::tiny_te2());
  layer->to(torch::kDouble);
  randomize(*layer);
  auto x = torch::randn({1, 4, 32}, torch::kDouble);
  EXPECT_TRUE(ls::test::gradcheck([&](const torch::Tensor& in) { return layer(in); }, x));
  // Through the hook LoRA uses: an adapter on q_proj whose weight is the variable.
  auto adapter = std::make_shared<MatrixAdapter>();
  layer->self_attn->q_proj->add_adapter(adapter);
  auto w = torch::randn({32, 32}, torch::kDouble) * 0.1;
  EXPECT_TRUE(ls::test::gradcheck(
      [&](const torch::Tensor& wv) {
        adapter->w = wv;
        return layer(x);
      },
      w));
}

}  // namespace
