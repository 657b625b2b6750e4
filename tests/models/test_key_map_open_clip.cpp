// open_clip <-> HF key map: split/fuse round trip, views, error messages, and a tiny TE2 loaded
// from an open_clip state dict against an open_clip-style forward written with plain torch ops
// (fused in_proj as nn.MultiheadAttention, x @ text_projection, argmax pooling).
#include <cmath>
#include <map>

#include "core/error.h"
#include "models/clip_text.h"
#include "models/key_map_open_clip.h"
#include "support/support.h"

namespace {

using ls::models::NamedTensors;

/// A random open_clip state dict of the shapes ClipTextConfig describes (tiny: a few MB).
NamedTensors random_open_clip_state(const ls::models::ClipTextConfig& c) {
  auto r = [](std::vector<int64_t> shape, double s = 0.2) { return torch::randn(shape, torch::kDouble) * s; };
  NamedTensors s = {{"token_embedding.weight", r({c.vocab_size, c.width})},
                    {"positional_embedding", r({c.max_positions, c.width})},
                    {"ln_final.weight", 1 + r({c.width})},
                    {"ln_final.bias", r({c.width})},
                    {"text_projection", r({c.width, c.projection_dim})},
                    {"logit_scale", torch::tensor(4.6052, torch::kDouble)}};
  for (int64_t i = 0; i < c.layers; ++i) {
    std::string p = "transformer.resblocks." + std::to_string(i) + ".";
    s.insert(s.end(), {{p + "ln_1.weight", 1 + r({c.width})},
                       {p + "ln_1.bias", r({c.width})},
                       {p + "attn.in_proj_weight", r({3 * c.width, c.width})},
                       {p + "attn.in_proj_bias", r({3 * c.width})},
                       {p + "attn.out_proj.weight", r({c.width, c.width})},
                       {p + "attn.out_proj.bias", r({c.width})},
                       {p + "ln_2.weight", 1 + r({c.width})},
                       {p + "ln_2.bias", r({c.width})},
                       {p + "mlp.c_fc.weight", r({c.mlp_width, c.width})},
                       {p + "mlp.c_fc.bias", r({c.mlp_width})},
                       {p + "mlp.c_proj.weight", r({c.width, c.mlp_width})},
                       {p + "mlp.c_proj.bias", r({c.width})}});
  }
  return s;
}

/// Copies an open_clip state into the model through open_clip_to_hf; every parameter must be hit once.
void load_open_clip(ls::models::ClipTextModelImpl& model, const NamedTensors& state) {
  auto params = model.named_parameters();
  std::map<std::string, int> hits;
  torch::NoGradGuard no_grad;
  for (const auto& [key, value] : state) {
    for (const auto& [hf, t] : ls::models::open_clip_to_hf(key, value)) {
      auto* p = params.find(hf);
      ASSERT_NE(p, nullptr) << hf;
      ASSERT_EQ(p->sizes(), t.sizes()) << hf;
      p->copy_(t);
      ++hits[hf];
    }
  }
  EXPECT_EQ(hits.size(), params.size());
  for (const auto& [k, n] : hits) EXPECT_EQ(n, 1) << k;
}

struct OpenClipOut {
  torch::Tensor penultimate, pooled;
};

/// open_clip's TextTransformer.encode_text as SGM's FrozenOpenCLIPEmbedder2 runs it, in plain torch.
OpenClipOut open_clip_forward(const NamedTensors& state, const torch::Tensor& ids, int64_t layers, int64_t heads) {
  std::map<std::string, torch::Tensor> s(state.begin(), state.end());
  auto ln = [&](const torch::Tensor& x, const std::string& p) {
    return torch::layer_norm(x, {x.size(-1)}, s.at(p + ".weight"), s.at(p + ".bias"), 1e-5);
  };
  auto lin = [&](const torch::Tensor& x, const std::string& p) {
    return torch::matmul(x, s.at(p + ".weight").t()) + s.at(p + ".bias");
  };
  int64_t n = ids.size(1);
  auto x = s.at("token_embedding.weight").index({ids}) + s.at("positional_embedding").slice(0, 0, n);
  int64_t b = x.size(0), c = x.size(2), d = c / heads;
  auto mask = torch::full({n, n}, -INFINITY, torch::kDouble).triu(1);  // open_clip's build_causal_mask
  OpenClipOut out;
  for (int64_t i = 0; i < layers; ++i) {
    if (i == layers - 1) out.penultimate = x;
    std::string p = "transformer.resblocks." + std::to_string(i) + ".";
    auto qkv = torch::matmul(ln(x, p + "ln_1"), s.at(p + "attn.in_proj_weight").t()) + s.at(p + "attn.in_proj_bias");
    auto chunks = qkv.chunk(3, -1);
    auto heads_of = [&](const torch::Tensor& t) { return t.reshape({b, n, heads, d}).transpose(1, 2); };
    auto scores = torch::matmul(heads_of(chunks[0]) / std::sqrt(double(d)), heads_of(chunks[1]).transpose(-1, -2));
    auto a = torch::matmul(torch::softmax(scores + mask, -1), heads_of(chunks[2]));
    x = x + lin(a.transpose(1, 2).reshape({b, n, c}), p + "attn.out_proj");
    x = x + lin(torch::gelu(lin(ln(x, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj");
  }
  auto last = ln(x, "ln_final");
  out.pooled = torch::matmul(last.index({torch::arange(b), ids.argmax(-1)}), s.at("text_projection"));
  return out;
}

TEST(KeyMapOpenClip, SplitGivesViewsOfTheStackedRows) {
  auto w = torch::randn({12, 4});
  auto parts = ls::models::open_clip_to_hf("transformer.resblocks.7.attn.in_proj_weight", w);
  ASSERT_EQ(parts.size(), 3u);
  const char* names[] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(parts[i].first, std::string("text_model.encoder.layers.7.self_attn.") + names[i] + "_proj.weight");
    EXPECT_TRUE(torch::equal(parts[i].second, w.slice(0, 4 * i, 4 * i + 4)));
    EXPECT_TRUE(parts[i].second.is_view());
    EXPECT_EQ(parts[i].second.data_ptr<float>(), w.data_ptr<float>() + 16 * i);  // no copy
  }
  auto bias = ls::models::open_clip_to_hf("transformer.resblocks.0.attn.in_proj_bias", torch::arange(6.0));
  EXPECT_EQ(bias[2].first, "text_model.encoder.layers.0.self_attn.v_proj.bias");
  EXPECT_TRUE(torch::equal(bias[2].second, torch::tensor({4.0, 5.0})));
  auto one = ls::models::open_clip_to_hf("positional_embedding", w);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].first, "text_model.embeddings.position_embedding.weight");
  EXPECT_TRUE(one[0].second.is_same(w));
}

TEST(KeyMapOpenClip, NamesBothWays) {
  EXPECT_EQ(ls::models::open_clip_key_for("text_model.encoder.layers.3.self_attn.k_proj.weight"),
            "transformer.resblocks.3.attn.in_proj_weight");
  EXPECT_EQ(ls::models::open_clip_key_for("text_model.encoder.layers.31.mlp.fc2.bias"),
            "transformer.resblocks.31.mlp.c_proj.bias");
  EXPECT_EQ(ls::models::open_clip_key_for("text_model.encoder.layers.0.layer_norm2.weight"),
            "transformer.resblocks.0.ln_2.weight");
  EXPECT_EQ(ls::models::open_clip_key_for("text_model.final_layer_norm.bias"), "ln_final.bias");
  EXPECT_EQ(ls::models::open_clip_key_for("text_projection"), "text_projection");
  EXPECT_EQ(ls::models::hf_keys_for("transformer.resblocks.12.attn.out_proj.weight"),
            std::vector<std::string>{"text_model.encoder.layers.12.self_attn.out_proj.weight"});
  EXPECT_TRUE(ls::models::hf_keys_for("transformer.resblocks.x.ln_1.weight").empty());
  EXPECT_TRUE(ls::models::hf_keys_for("visual.proj").empty());
  EXPECT_TRUE(ls::models::hf_keys_for("attn_mask").empty());
  EXPECT_THROW(ls::models::open_clip_to_hf("visual.proj", torch::zeros({2})), ls::Error);
  EXPECT_THROW(ls::models::open_clip_to_hf("transformer.resblocks.0.attn.in_proj_bias", torch::zeros({4})),
               ls::Error);
  EXPECT_THROW(ls::models::open_clip_key_for("text_model.embeddings.position_ids"), ls::Error);
}

TEST(KeyMapOpenClip, FusingReportsTheMissingPart) {
  NamedTensors hf = {{"text_model.encoder.layers.2.self_attn.q_proj.weight", torch::zeros({4, 4})},
                     {"text_model.encoder.layers.2.self_attn.v_proj.weight", torch::zeros({4, 4})}};
  try {
    ls::models::hf_to_open_clip(hf);
    FAIL() << "expected ls::Error";
  } catch (const ls::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("text_model.encoder.layers.2.self_attn.k_proj.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("transformer.resblocks.2.attn.in_proj_weight"), std::string::npos) << msg;
  }
  hf.emplace_back("text_model.encoder.layers.2.self_attn.k_proj.weight", torch::zeros({4, 3}));
  EXPECT_THROW(ls::models::hf_to_open_clip(hf), ls::Error);  // mismatched shape
  EXPECT_THROW(ls::models::hf_to_open_clip({{"text_model.embeddings.position_ids", torch::zeros({1, 77})}}),
               ls::Error);
}

TEST(KeyMapOpenClip, TinyStateRoundTripsAndForwardMatchesOpenClip) {
  torch::manual_seed(21);
  auto config = ls::models::ClipTextConfig::tiny_te2();
  auto state = random_open_clip_state(config);
  ls::models::ClipTextModel model(config);
  model->to(torch::kDouble);
  load_open_clip(*model, state);

  NamedTensors hf;
  for (const auto& item : model->named_parameters()) hf.emplace_back(item.key(), item.value().detach());
  auto back = ls::models::hf_to_open_clip(hf);
  std::map<std::string, torch::Tensor> back_map(back.begin(), back.end());
  ASSERT_EQ(back_map.size(), state.size());
  for (const auto& [key, value] : state) {
    ASSERT_TRUE(back_map.count(key)) << key;
    EXPECT_TRUE(torch::equal(back_map.at(key), value)) << key;
  }

  auto ids = torch::zeros({3, 77}, torch::kLong);
  for (int64_t b = 0; b < 3; ++b) {
    int64_t end = 5 + 30 * b;
    ids[b][0] = 49406;
    ids.index_put_({b, torch::indexing::Slice(1, end)}, torch::randint(1, 49406, {end - 1}, torch::kLong));
    ids[b][end] = 49407;
  }
  auto expected = open_clip_forward(state, ids, config.layers, config.heads);
  auto out = model(ids);
  EXPECT_TRUE(ls::test::all_close(out.penultimate, expected.penultimate, 1e-10, 1e-10));
  EXPECT_TRUE(ls::test::all_close(out.pooled, expected.pooled, 1e-10, 1e-10));
}

}  // namespace
