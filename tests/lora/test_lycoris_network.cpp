// LyCORIS networks over SDXL: lycoris.kohya's layer choice per preset, files lorastudio writes
// loading back to the same outputs, files lycoris itself wrote (tests/fixtures/lycoris/network_*,
// scripts/make-lycoris-fixtures: lycoris.kohya's create_network + save_weights over a stand-in of
// the tiny UNet's layers) merging to lycoris' weights, and the metadata kohya_ss + lycoris write.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include <torch/torch.h>

#include "io/safetensors.h"
#include "lora/adapters.h"
#include "lora/kohya_format.h"
#include "lora/network.h"
#include "lora/plan.h"
#include "models/sdxl_model.h"
#include "nn/layers.h"
#include "support/support.h"

namespace {

using ls::lora::Algo;
using ls::lora::LoraNetwork;
using ls::lora::LoraNetworkOptions;
using ls::models::SdxlConfig;
using ls::models::SdxlModel;

std::set<std::string> slot_names(const SdxlModel& model, const LoraNetworkOptions& o) {
  std::set<std::string> names;
  for (const auto& s : ls::lora::find_lora_slots(model, o)) names.insert(s.name);
  return names;
}

LoraNetworkOptions lycoris_options(Algo algo, int64_t rank, int64_t conv_rank) {
  LoraNetworkOptions o;
  o.lycoris = true;
  o.module.algo = algo;
  o.rank = rank, o.alpha = rank / 2.0;
  o.conv_rank = conv_rank, o.conv_alpha = 1;
  return o;
}

// lycoris' "full" preset on kohya's SDXL UNet: every container kohya's LoCon uses (ResBlocks,
// Down- and Upsamples, transformers), 3x3 convs at conv_dim; full-lin drops the 3x3 convs and the
// samplers, attn-mlp keeps the transformers, attn-only their attention projections.
TEST(LycorisPresets, LayersPerPresetOnFullSizeSdxl) {
  ls::nn::SkipInitGuard skip;
  const SdxlModel model = SdxlModel::create(SdxlConfig{}, {true, true, false});
  LoraNetworkOptions kohya_conv;
  kohya_conv.conv_rank = 4;
  LoraNetworkOptions kohya_plain;
  auto full = lycoris_options(Algo::kLoha, 8, 4);
  EXPECT_EQ(slot_names(model, full), slot_names(model, kohya_conv));
  const auto all = ls::lora::all_lora_slots(model);
  auto lin = full;
  lin.preset = "full-lin";
  std::set<std::string> expected_lin;
  for (const auto& [name, s] : all)
    if (!s.conv3x3 && (!s.in_conv_block || s.in_resblock)) expected_lin.insert(name);
  EXPECT_EQ(slot_names(model, lin), expected_lin);
  auto attn_mlp = full;
  attn_mlp.preset = "attn-mlp";
  EXPECT_EQ(slot_names(model, attn_mlp), slot_names(model, kohya_plain));
  auto attn = full;
  attn.preset = "attn-only";
  for (const auto& n : slot_names(model, attn))
    EXPECT_TRUE(n.find("_attn1_") != std::string::npos || n.find("_attn2_") != std::string::npos ||
                n.find("_self_attn_") != std::string::npos)
        << n;
  auto unet_only = full;
  unet_only.preset = "unet-only";
  for (const auto& n : slot_names(model, unet_only)) EXPECT_EQ(n.rfind("lora_unet_", 0), 0u) << n;
  auto bad = full;
  bad.preset = "my-preset.toml";
  EXPECT_NE(ls::test::error_of([&] { ls::lora::find_lora_slots(model, bad); }).find("not a lycoris preset"),
            std::string::npos);
  // lycoris' conv_dim 0 keeps the ResBlocks' linear and 1x1 layers (kohya's LoCon drops the blocks).
  auto no_conv = full;
  no_conv.conv_rank = 0;
  auto lin_names = slot_names(model, lin);
  std::set<std::string> no_conv_names = slot_names(model, no_conv);
  for (const auto& n : lin_names) EXPECT_TRUE(no_conv_names.count(n)) << n;
}

class TinyLycoris : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(11);
    model_ = SdxlModel::create(SdxlConfig::tiny(), {true, true, false});
    for (auto& p : model_.unet->parameters()) p.requires_grad_(false);
    torch::set_num_threads(1);
    x_ = torch::randn({1, 4, 8, 8});
    t_ = torch::tensor({700}, torch::kLong);
    context_ = torch::randn({1, 77, model_.config.unet.context_dim});
    y_ = torch::randn({1, model_.config.unet.adm_in_channels});
  }
  torch::Tensor unet() { return model_.unet->forward(x_, t_, context_, y_); }
  static std::string fixture(const std::string& name) {
    return (std::filesystem::path(ls::test::kSourceDir) / "tests/fixtures/lycoris" / name).string();
  }
  SdxlModel model_;
  torch::Tensor x_, t_, context_, y_;
  ls::test::TempDir dir_;
};

// A LoHa, a LoKr (Tucker convs, decomposed w1) and a DoRA LoCon written by lorastudio load back
// with their algorithm, keys and values, and give the in-memory network's UNet output.
TEST_F(TinyLycoris, FilesWrittenLoadBackToTheSameOutput) {
  struct Kind {
    const char* name;
    Algo algo;
    bool dora, tucker, decompose_both;
    const char* key;  // a key only this algorithm has
  };
  const Kind kinds[] = {{"loha", Algo::kLoha, false, true, false, ".hada_w1_a"},
                        {"lokr", Algo::kLokr, false, true, true, ".lokr_w1_a"},
                        {"dora", Algo::kLora, true, false, false, ".dora_scale"},
                        {"loha_dora", Algo::kLoha, true, true, false, ".hada_t1"}};
  torch::NoGradGuard no_grad;
  const torch::Tensor base = unet();
  for (const Kind& k : kinds) {
    SCOPED_TRACE(k.name);
    // LoKr rank 2, factor 8: the 64-channel layers get a decomposed w1 [8, 8] and a low-rank w2.
    auto o = lycoris_options(k.algo, k.algo == Algo::kLokr ? 2 : 4, 2);
    o.module.dora = k.dora, o.module.tucker = k.tucker, o.module.decompose_both = k.decompose_both;
    o.module.factor = 8;
    o.text_encoders = false;
    LoraNetwork net(model_, o);
    net->apply();
    EXPECT_TRUE(torch::allclose(unet(), base, 1e-5, 1e-5));  // a fresh network changes (almost) nothing
    for (auto& [slot, m] : net->modules())
      for (auto& [key, p] : m->named_parameters().pairs()) p.add_(torch::randn_like(p) * 0.05);
    const torch::Tensor out = unet();
    EXPECT_FALSE(torch::allclose(out, base));
    net->remove();
    const std::string path = (dir_ / (std::string(k.name) + ".safetensors")).string();
    ls::lora::save_lora(path, *net, torch::kFloat, ls::lora::network_metadata(o, k.name, 1024, 1024));
    ls::io::SafetensorsReader reader(path);
    bool has_key = false;
    for (const auto& info : reader.tensors()) has_key |= info.name.find(k.key) != std::string::npos;
    EXPECT_TRUE(has_key) << k.key;
    auto loaded = ls::lora::load_lora(path, model_);
    EXPECT_TRUE(loaded.unmatched.empty());
    ASSERT_EQ(loaded.network->modules().size(), net->modules().size());
    for (size_t i = 0; i < net->modules().size(); ++i) {
      const auto& a = net->modules()[i].second;
      const auto& b = loaded.network->modules()[i].second;
      EXPECT_EQ(a->algo(), b->algo());
      EXPECT_EQ(a->options().dora, b->options().dora);
      EXPECT_DOUBLE_EQ(a->scale(), b->scale()) << net->modules()[i].first.name;
    }
    loaded.network->apply();
    EXPECT_TRUE(torch::equal(unet(), out));
    loaded.network->remove();
  }
}

// Files lycoris.kohya wrote itself (lycoris' own key names, dtypes and layouts) load, and merged
// into the base weights they give the weights lycoris' forward uses, within float32 rounding of
// a k*k*in = 288-term rebuild (~1e-6 relative; 1e-5 bound).
TEST_F(TinyLycoris, LycorisWrittenFilesMergeToLycorisWeights) {
  ls::io::SafetensorsReader base(fixture("network_base.safetensors"));
  const auto slots = ls::lora::all_lora_slots(model_);
  for (const char* algo : {"loha", "lokr", "locon_dora"}) {
    SCOPED_TRACE(algo);
    torch::NoGradGuard no_grad;
    for (const auto& info : base.tensors()) {
      auto it = slots.find(info.name);
      ASSERT_NE(it, slots.end()) << info.name << " is no layer of the tiny model";
      torch::Tensor w = it->second.target.weight();
      ASSERT_EQ(w.sizes().vec(), info.shape) << info.name;
      w.copy_(base.load(info.name));
    }
    const std::string file = fixture(std::string("network_") + algo + ".safetensors");
    // The network lorastudio builds from the same network_args has these modules with lycoris'
    // keys and shapes (the factorisation, the conv rank and DoRA's axis included).
    auto o = lycoris_options(std::string(algo) == "loha" ? Algo::kLoha : std::string(algo) == "lokr" ? Algo::kLokr
                                                                                                        : Algo::kLora,
                             4, 2);
    o.alpha = std::string(algo) == "lokr" ? 1 : 2;
    o.module.factor = std::string(algo) == "lokr" ? 4 : -1;
    o.module.dora = std::string(algo) == "locon_dora";
    std::map<std::string, std::vector<int64_t>> ours;
    for (const auto& [key, t] : ls::lora::lora_state(*LoraNetwork(model_, o))) ours[key] = t.sizes().vec();
    ls::io::SafetensorsReader theirs(file);
    for (const auto& info : theirs.tensors()) {
      ASSERT_TRUE(ours.count(info.name)) << info.name;
      EXPECT_EQ(ours.at(info.name), info.shape) << info.name;
      if (info.name.size() > 6 && info.name.substr(info.name.size() - 6) == ".alpha")
        EXPECT_FLOAT_EQ(theirs.load(info.name).item<float>(),
                        info.name.find("input_blocks_3_0_op") != std::string::npos ? 1.0f : static_cast<float>(o.alpha))
            << info.name;
    }
    auto loaded = ls::lora::load_lora(file, model_);
    EXPECT_TRUE(loaded.unmatched.empty());
    EXPECT_EQ(loaded.network->modules().size(), base.tensors().size());
    loaded.network->merge_into_base();
    ls::io::SafetensorsReader expected(fixture(std::string("network_") + algo + "_expected.safetensors"));
    for (const auto& info : base.tensors()) {
      const torch::Tensor got = slots.at(info.name).target.weight();
      EXPECT_LE(ls::test::norm_rel_error(got, expected.load(info.name + ".merged")), 1e-5) << info.name;
    }
  }
}

// lycoris.kohya names LoKr "kron" inside but writes lokr_* keys; kohya_ss' metadata says
// lycoris.kohya and json.dumps of the network_args (with train_network.py's dropout entry).
TEST(LycorisMetadata, ModuleAndArgsAsKohyaWrites) {
  LoraNetworkOptions o;
  o.lycoris = true;
  o.network_args = {"algo=loha", "conv_dim=4", "conv_alpha=1", "preset=full"};
  auto m = ls::lora::network_metadata(o, "t", 1024, 1024);
  EXPECT_EQ(m.at("ss_network_module"), "lycoris.kohya");
  EXPECT_EQ(m.at("ss_network_args"),
            R"({"algo": "loha", "conv_dim": "4", "conv_alpha": "1", "preset": "full", "dropout": null})");
  o.dropout = 0.1;
  o.network_args = {"algo=lokr", "factor=8"};
  EXPECT_EQ(ls::lora::network_metadata(o, "t", 1024, 1024).at("ss_network_args"),
            R"({"algo": "lokr", "factor": "8", "dropout": 0.1})");
}

// `plan` counts what each algorithm has: LoHa 2x LoRA's factors, LoKr its Kronecker factors.
TEST(LycorisPlan, TensorsAreTheModulesTensors) {
  torch::manual_seed(1);
  const SdxlModel model = SdxlModel::create(SdxlConfig::tiny(), {true, true, false});
  for (Algo algo : {Algo::kLora, Algo::kLoha, Algo::kLokr}) {
    auto o = lycoris_options(algo, 4, 2);
    o.module.dora = algo == Algo::kLora;
    const ls::lora::LoraPlan plan = ls::lora::plan_network(model, o);
    LoraNetwork net(model, o);
    auto state = ls::lora::lora_state(*net);
    ASSERT_EQ(plan.tensors.size(), state.size()) << ls::lora::algo_name(algo);
    int64_t params = 0;
    for (size_t i = 0; i < state.size(); ++i) {
      EXPECT_EQ(plan.tensors[i].name, state[i].first);
      EXPECT_EQ(plan.tensors[i].shape, state[i].second.sizes().vec()) << state[i].first;
      params += state[i].second.numel();
    }
    EXPECT_EQ(plan.total_parameters(), params);
  }
}

}  // namespace
