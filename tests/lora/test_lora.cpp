// LoRA networks: kohya's names and shapes on the full-size architecture, save/load round trips,
// the identities multiplier 0 = base and merged = dynamic, gradients only into LoRA weights, and
// bad files.
#include <fstream>
#include <map>

#include "core/error.h"
#include "core/sha256.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "lora/lora_module.h"
#include "lora/network.h"
#include "models/sdxl_conditioner.h"
#include "nn/layers.h"
#include "support/support.h"

namespace {

using ls::lora::LoraNetwork;
using ls::lora::LoraNetworkOptions;
using ls::models::SdxlConfig;
using ls::models::SdxlModel;

std::map<std::string, std::vector<int64_t>> state_shapes(const ls::lora::LoraNetworkImpl& net) {
  std::map<std::string, std::vector<int64_t>> out;
  for (auto& [name, t] : ls::lora::lora_state(net)) out[name] = t.sizes().vec();
  return out;
}

class FullSizeLora : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ls::nn::SkipInitGuard skip;  // the base weights are never touched: no 10 GB allocated
    model_ = new SdxlModel(SdxlModel::create(SdxlConfig{}, {true, true, false}));
  }
  static void TearDownTestSuite() { delete model_; }
  static inline SdxlModel* model_ = nullptr;
};

TEST_F(FullSizeLora, UnetKeysEqualKohyas) {
  LoraNetworkOptions o;
  o.rank = 8;
  o.alpha = 4;
  o.text_encoders = false;
  auto slots = ls::lora::find_lora_slots(*model_, o);
  EXPECT_EQ(slots.size(), 722u);
  LoraNetwork net(*model_, o);
  EXPECT_EQ(state_shapes(*net), ls::test::fixture_key_shapes("lora_keys.txt"));
  EXPECT_FLOAT_EQ(net->modules().front().second->alpha(), 4.0f);
}

TEST_F(FullSizeLora, ConvKeysEqualKohyas) {
  LoraNetworkOptions o;
  o.rank = 8;
  o.alpha = 4;
  o.conv_rank = 4;
  o.conv_alpha = 1;
  o.text_encoders = false;
  EXPECT_EQ(ls::lora::find_lora_slots(*model_, o).size(), 788u);
  EXPECT_EQ(state_shapes(*LoraNetwork(*model_, o)), ls::test::fixture_key_shapes("lora_keys_conv4.txt"));
}

TEST_F(FullSizeLora, TextEncoderModulesAndParameterCountsPerRank) {
  LoraNetworkOptions o;
  o.rank = 1;
  auto slots = ls::lora::find_lora_slots(*model_, o);
  std::map<ls::lora::Part, int64_t> modules, params;
  for (const auto& s : slots) {
    modules[s.part] += 1;
    params[s.part] += s.target.in_features() + s.target.out_features();
  }
  EXPECT_EQ(modules[ls::lora::Part::kUnet], 722);
  EXPECT_EQ(modules[ls::lora::Part::kTe1], 72);
  EXPECT_EQ(modules[ls::lora::Part::kTe2], 192);
  // SPEC.md: parameters per unit rank, UNet 2,659,840; all parts 3,563,008.
  EXPECT_EQ(params[ls::lora::Part::kUnet], 2659840);
  EXPECT_EQ(params[ls::lora::Part::kUnet] + params[ls::lora::Part::kTe1] + params[ls::lora::Part::kTe2], 3563008);
  auto has = [&](const std::string& n) {
    return std::any_of(slots.begin(), slots.end(), [&](const auto& s) { return s.name == n; });
  };
  EXPECT_TRUE(has("lora_te1_text_model_encoder_layers_0_self_attn_q_proj"));
  EXPECT_TRUE(has("lora_te1_text_model_encoder_layers_11_mlp_fc2"));
  EXPECT_TRUE(has("lora_te2_text_model_encoder_layers_31_self_attn_out_proj"));
  o.exclude = {"_te2_", "attn2"};
  for (const auto& s : ls::lora::find_lora_slots(*model_, o)) {
    EXPECT_EQ(s.name.find("_te2_"), std::string::npos);
    EXPECT_EQ(s.name.find("attn2"), std::string::npos);
  }
}

class TinyLora : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(11);
    model_ = SdxlModel::create(SdxlConfig::tiny(), {true, true, false});
    for (auto& p : model_.unet->parameters()) p.requires_grad_(false);
    for (auto* te : {&model_.te1, &model_.te2})
      for (auto& p : (*te)->parameters()) p.requires_grad_(false);
    x_ = torch::randn({2, 4, 16, 16});
    t_ = torch::tensor({10, 700}, torch::kLong);
    context_ = torch::randn({2, 77, model_.config.unet.context_dim});
    y_ = torch::randn({2, model_.config.unet.adm_in_channels});
  }
  LoraNetwork make(int64_t rank, int64_t conv_rank = 0) {
    LoraNetworkOptions o;
    o.rank = rank;
    o.alpha = rank / 2.0;
    o.conv_rank = conv_rank;
    o.conv_alpha = 1;
    LoraNetwork net(model_, o);
    torch::NoGradGuard no_grad;
    for (auto& [slot, m] : net->modules())  // a trained-looking network: up no longer zero
      for (auto& p : m->parameters()) p.normal_(0, 0.05);
    return net;
  }
  torch::Tensor unet() { return model_.unet->forward(x_, t_, context_, y_); }
  SdxlModel model_;
  torch::Tensor x_, t_, context_, y_;
  ls::test::TempDir dir_;
};

TEST_F(TinyLora, FreshNetworkAndMultiplierZeroGiveTheBaseOutput) {
  torch::NoGradGuard no_grad;
  auto base = unet();
  LoraNetworkOptions o;
  LoraNetwork fresh(model_, o);
  fresh->apply();
  EXPECT_TRUE(torch::equal(unet(), base));  // up starts at zero
  fresh->remove();
  auto net = make(4, 2);
  net->apply();
  EXPECT_FALSE(torch::allclose(unet(), base));
  net->set_multiplier(0.0);
  EXPECT_TRUE(torch::equal(unet(), base));
  net->remove();
  net->set_multiplier(1.0);
  EXPECT_TRUE(torch::equal(unet(), base));
}

TEST_F(TinyLora, MergedEqualsDynamic) {
  torch::NoGradGuard no_grad;
  auto net = make(4, 2);
  net->set_multiplier(0.7);
  net->apply();
  auto dynamic = unet();
  ls::models::SdxlConditioner cond(model_.te1, model_.te2);
  auto ids = torch::randint(0, 49406, {1, 77}, torch::kLong);
  auto dynamic_text = cond.encode(ids, ids).context;
  net->remove();
  net->merge_into_base();
  EXPECT_LE(ls::test::norm_rel_error(unet(), dynamic), 1e-5);
  EXPECT_LE(ls::test::norm_rel_error(cond.encode(ids, ids).context, dynamic_text), 1e-5);
}

TEST_F(TinyLora, GradientsReachOnlyLoraWeightsAndMatchFiniteDifferences) {
  auto net = make(2, 2);
  net->apply();
  auto loss = unet().square().mean();
  loss.backward();
  for (auto& p : model_.unet->parameters()) EXPECT_FALSE(p.grad().defined());
  // Every UNet LoRA weight gets a gradient; the text-encoder ones are not in this graph.
  for (auto& [slot, m] : net->modules()) {
    for (auto& p : m->parameters()) {
      bool has = p.grad().defined() && p.grad().abs().sum().item<double>() > 0;
      EXPECT_EQ(has, slot.part == ls::lora::Part::kUnet) << slot.name;
    }
  }
  // Central differences on a few elements of a transformer LoRA and a conv LoRA (float64).
  model_.unet->to(torch::kDouble);
  net->to(torch::kDouble);
  x_ = x_.to(torch::kDouble), context_ = context_.to(torch::kDouble), y_ = y_.to(torch::kDouble);
  for (const char* name : {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k",
                           "lora_unet_output_blocks_2_0_in_layers_2"}) {
    std::shared_ptr<ls::lora::LoraModuleImpl> m;
    for (auto& [slot, mod] : net->modules())
      if (slot.name == name) m = std::dynamic_pointer_cast<ls::lora::LoraModuleImpl>(mod);
    ASSERT_TRUE(m) << name;
    auto w = m->down();
    w.mutable_grad() = torch::Tensor();
    unet().square().mean().backward();
    auto g = w.grad().flatten();
    for (int64_t i : {int64_t(0), w.numel() / 2, w.numel() - 1}) {
      double eps = 1e-6;
      auto flat = w.detach().view({-1});
      double v = flat[i].item<double>();
      torch::NoGradGuard no_grad;
      flat[i] = v + eps;
      double fp = unet().square().mean().item<double>();
      flat[i] = v - eps;
      double fm = unet().square().mean().item<double>();
      flat[i] = v;
      double numeric = (fp - fm) / (2 * eps);
      EXPECT_NEAR(g[i].item<double>(), numeric, 1e-6 + 1e-4 * std::abs(numeric)) << name << " element " << i;
    }
  }
}

TEST_F(TinyLora, SaveLoadRoundTripIsExact) {
  auto net = make(4, 2);
  LoraNetworkOptions o;
  o.rank = 4, o.alpha = 2, o.conv_rank = 2, o.conv_alpha = 1;
  auto meta = ls::lora::network_metadata(o, "tiny", 1024, 1024);
  meta["ss_learning_rate"] = "0.0001";
  auto path = (dir_ / "lora.safetensors").string();
  ls::lora::save_lora(path, *net, torch::kFloat, meta);
  auto loaded = ls::lora::load_lora(path, model_);
  EXPECT_TRUE(loaded.unmatched.empty());
  auto a = ls::lora::lora_state(*net), b = ls::lora::lora_state(*loaded.network);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
  for (const auto& [k, v] : meta) EXPECT_EQ(loaded.metadata.at(k), v) << k;
  EXPECT_EQ(loaded.metadata.at("ss_network_args"), R"({"conv_alpha":"1.0","conv_dim":"2"})");
  EXPECT_EQ(loaded.metadata.at("ss_network_alpha"), "2.0");
  EXPECT_EQ(loaded.metadata.at("modelspec.architecture"), "stable-diffusion-xl-v1-base/lora");
  // sshs_model_hash is the SHA-256 of everything after the header.
  ls::io::SafetensorsReader reader(path);
  EXPECT_EQ(loaded.metadata.at("sshs_model_hash"), ls::core::sha256_hex(reader.data_bytes()));
  // fp16 save: alpha and weights stored as F16, values rounded.
  auto half = (dir_ / "half.safetensors").string();
  ls::lora::save_lora(half, *net, torch::kHalf, meta);
  ls::io::SafetensorsReader hr(half);
  for (const auto& info : hr.tensors()) EXPECT_EQ(info.dtype, ls::io::Dtype::kF16) << info.name;
}

// A LoRA with text-encoder modules applied to the UNet alone: one line per part left out, not
// one per module.
TEST_F(TinyLora, WhatALoadLeftOutIsOneLinePerPart) {
  auto net = make(4);
  const auto path = (dir_ / "all.safetensors").string();
  ls::lora::save_lora(path, *net, torch::kFloat, ls::lora::network_metadata({}, "all", 1024, 1024));
  SdxlModel unet_only;
  unet_only.config = model_.config;
  unet_only.unet = model_.unet;
  const auto loaded = ls::lora::load_lora(path, unet_only);
  ASSERT_GT(loaded.unmatched.size(), 10u);
  auto lines = ls::lora::unmatched_summary(path, loaded.unmatched, unet_only);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(" lora_te1 modules not applied (text encoder 1 is not loaded)"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(" lora_te2 modules not applied (text encoder 2 is not loaded)"), std::string::npos) << lines[1];
  size_t counted = 0;
  for (const std::string& l : lines) counted += std::stoul(l.substr(path.size() + 2));
  EXPECT_EQ(counted, loaded.unmatched.size());
  // Names of a loaded part that match nothing (another architecture) are listed, a few of them.
  lines = ls::lora::unmatched_summary(path, {"lora_unet_a", "lora_unet_b", "lora_unet_c", "lora_unet_d", "x"}, model_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], path + ": 1 module matches no layer of the model and is ignored (x)");
  EXPECT_EQ(lines[1], path + ": 4 lora_unet modules match no layer of the model and are ignored (lora_unet_a, "
                             "lora_unet_b, lora_unet_c, ...)");
  EXPECT_TRUE(ls::lora::unmatched_summary(path, {}, model_).empty());
}

TEST_F(TinyLora, BadFilesGiveClearErrors) {
  auto expect_error = [&](const std::string& path, const std::string& needle) {
    try {
      ls::lora::load_lora(path, model_);
      ADD_FAILURE() << "no error for " << path;
    } catch (const ls::Error& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(needle), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  };
  // SD 1.5 LoRA names: nothing matches.
  auto sd15 = (dir_ / "sd15.safetensors").string();
  ls::io::save_safetensors(sd15, {{"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", torch::zeros({4, 320})},
                                  {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", torch::zeros({320, 4})},
                                  {"lora_unet_down_blocks_0_attentions_0_proj_in.alpha", torch::ones({})}});
  expect_error(sd15, "another architecture");
  // Mismatched shapes.
  auto net = make(4);
  auto state = ls::lora::lora_state(*net);
  for (auto& [name, t] : state)
    if (name == "lora_unet_input_blocks_4_1_proj_in.lora_down.weight") t = torch::zeros({4, t.size(1) + 1});
  auto bad_shape = (dir_ / "shape.safetensors").string();
  ls::io::save_safetensors(bad_shape, state);
  expect_error(bad_shape, "lora_unet_input_blocks_4_1_proj_in.lora_down.weight has shape");
  // Truncated.
  auto good = (dir_ / "good.safetensors").string();
  ls::lora::save_lora(good, *net, torch::kFloat, {});
  auto cut = (dir_ / "cut.safetensors").string();
  std::filesystem::copy_file(good, cut);
  std::filesystem::resize_file(cut, std::filesystem::file_size(good) - 100);
  expect_error(cut, cut);
  // A base checkpoint given as a LoRA.
  auto base = (dir_ / "base.safetensors").string();
  ls::io::save_safetensors(base, {{"model.diffusion_model.label_emb.0.0.weight", torch::zeros({2, 2})}});
  expect_error(base, "not a LoRA");
}

TEST(LoraArg, FileAndMultiplier) {
  EXPECT_EQ(ls::lora::parse_lora_arg("a.safetensors:0.5"), std::make_pair(std::string("a.safetensors"), 0.5));
  EXPECT_EQ(ls::lora::parse_lora_arg("a.safetensors"), std::make_pair(std::string("a.safetensors"), 1.0));
  EXPECT_EQ(ls::lora::parse_lora_arg("C:/x.safetensors"), std::make_pair(std::string("C:/x.safetensors"), 1.0));
}

}  // namespace

namespace {

// kohya's dropouts act only in training; rank dropout rescales by 1/(1-p) so the mean delta is
// unchanged, module dropout skips the whole delta with probability p.
TEST(LoraDropout, TrainingOnlyAndUnbiased) {
  torch::manual_seed(3);
  ls::nn::Linear base(16, 8);
  ls::lora::LoraTarget target;
  target.linear = base;
  ls::lora::LoraModuleOptions plain_o, rank_o, module_o;
  plain_o.rank = rank_o.rank = module_o.rank = 4;
  rank_o.rank_dropout = 0.5;
  module_o.module_dropout = 0.25;
  ls::lora::LoraModule plain(target, plain_o), rank_drop(target, rank_o), module_drop(target, module_o);
  torch::NoGradGuard no_grad;
  plain->lora_up_linear->weight.normal_();
  for (auto* m : {&rank_drop, &module_drop}) {
    (*m)->lora_down_linear->weight.copy_(plain->lora_down_linear->weight);
    (*m)->lora_up_linear->weight.copy_(plain->lora_up_linear->weight);
  }
  auto x = torch::randn({1, 3, 16});
  auto expected = plain->delta(x);
  rank_drop->eval();
  module_drop->eval();
  EXPECT_TRUE(torch::allclose(rank_drop->delta(x), expected));
  EXPECT_TRUE(torch::allclose(module_drop->delta(x), expected));
  rank_drop->train();
  module_drop->train();
  const int n = 4000;
  auto rank_sum = torch::zeros_like(expected);
  int skipped = 0;
  for (int i = 0; i < n; ++i) {
    rank_sum += rank_drop->delta(x);
    skipped += module_drop->delta(x).abs().sum().item<double>() == 0.0;
  }
  EXPECT_LT(ls::test::norm_rel_error(rank_sum / n, expected), 0.05);
  EXPECT_NEAR(skipped / double(n), 0.25, 0.03);
}

}  // namespace
