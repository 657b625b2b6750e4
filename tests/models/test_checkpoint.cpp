// Checkpoint layout, kind detection, load/save round trips and the all-problems-at-once report.
#include <fstream>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/checkpoint_kind.h"
#include "nn/layers.h"
#include "support/support.h"

namespace {

using ls::models::SdxlConfig;
using ls::models::SdxlModel;

TEST(Checkpoint, FullSizeLayoutEqualsFixtureKeys) {
  ls::nn::SkipInitGuard skip;
  auto model = SdxlModel::create(SdxlConfig{}, ls::models::Components::all());
  std::map<std::string, std::vector<int64_t>> ours;
  for (auto& [name, t] : ls::models::checkpoint_tensors(model)) ours[name] = t.sizes().vec();
  std::map<std::string, std::vector<int64_t>> expected;
  for (auto f : {"sdxl_unet_keys.txt", "te_keys.txt", "vae_keys.txt"}) expected.merge(ls::test::fixture_key_shapes(f));
  ASSERT_EQ(expected.size(), 1680u + 587u + 248u);
  std::vector<std::string> differ;
  for (auto& [k, shape] : ours)
    if (!expected.count(k) || expected[k] != shape) differ.push_back(k);
  for (auto& [k, shape] : expected)
    if (!ours.count(k)) differ.push_back("missing " + k);
  EXPECT_TRUE(differ.empty()) << differ.size() << " keys differ, first: " << differ.front();
}

class TinyCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(7);
    model_ = SdxlModel::create(SdxlConfig::tiny(), ls::models::Components::all());
    path_ = (dir_ / "tiny.safetensors").string();
    ls::models::save_sdxl_checkpoint(path_, model_, std::nullopt);
  }
  ls::test::TempDir dir_;
  SdxlModel model_;
  std::string path_;
};

TEST_F(TinyCheckpoint, RoundTripIsExact) {
  auto loaded = ls::models::load_sdxl_checkpoint(path_, "", ls::models::Components::all(), torch::kCPU, torch::kFloat);
  auto a = ls::models::checkpoint_tensors(model_);
  auto b = ls::models::checkpoint_tensors(loaded);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
}

TEST_F(TinyCheckpoint, Fp16FileLoadsAsRoundedFp32) {
  auto half_path = (dir_ / "half.safetensors").string();
  ls::models::save_sdxl_checkpoint(half_path, model_, torch::kHalf);
  ls::io::SafetensorsReader reader(half_path);
  EXPECT_EQ(reader.find(std::string(ls::models::kUnetPrefix) + "out.2.weight")->dtype, ls::io::Dtype::kF16);
  auto loaded = ls::models::load_sdxl_checkpoint(half_path, "", {true, false, false}, torch::kCPU, torch::kFloat);
  auto w = loaded.unet->named_parameters()["out.2.weight"];
  EXPECT_TRUE(torch::equal(w, model_.unet->named_parameters()["out.2.weight"].to(torch::kHalf).to(torch::kFloat)));
}

TEST_F(TinyCheckpoint, ConfigTravelsInMetadata) {
  ls::io::SafetensorsReader reader(path_);
  auto config = ls::models::resolve_config(reader, "");
  EXPECT_EQ(nlohmann::json(config), nlohmann::json(SdxlConfig::tiny()));
}

// Rewrites the checkpoint with one tensor dropped (undefined replacement) or replaced.
std::string rewrite(const std::string& path, const std::string& dir, const std::string& key, torch::Tensor replacement) {
  ls::io::SafetensorsReader reader(path);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& info : reader.tensors()) {
    if (info.name != key) tensors.emplace_back(info.name, reader.load(info.name));
    else if (replacement.defined()) tensors.emplace_back(info.name, replacement);
  }
  auto out = dir + "/edited.safetensors";
  ls::io::save_safetensors(out, tensors, reader.metadata());
  return out;
}

void expect_load_error(const std::string& path, ls::models::Components parts, const std::string& needle) {
  try {
    ls::models::load_sdxl_checkpoint(path, "", parts, torch::kCPU, torch::kFloat);
    ADD_FAILURE() << "no error for " << needle;
  } catch (const ls::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST_F(TinyCheckpoint, MissingAndMisshapedKeysAreListed) {
  std::string key = std::string(ls::models::kUnetPrefix) + "out.2.bias";
  expect_load_error(rewrite(path_, dir_.path(), key, {}), {true, false, false}, "1 missing: " + key);
  expect_load_error(rewrite(path_, dir_.path(), key, torch::zeros({3})), {true, false, false},
                    "wrong shape: " + key + " [3]");
  std::string te2_key = std::string(ls::models::kTe2Prefix) + "transformer.resblocks.0.attn.in_proj_weight";
  expect_load_error(rewrite(path_, dir_.path(), te2_key, {}), {false, true, false}, te2_key);
}

TEST(CheckpointKind, TellsWhatAFileIs) {
  using ls::io::TensorInfo;
  using ls::models::CheckpointKind;
  auto t = [](std::string name, std::vector<int64_t> shape) {
    TensorInfo i;
    i.name = std::move(name);
    i.shape = std::move(shape);
    return i;
  };
  std::string k = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight";
  EXPECT_EQ(ls::models::detect_checkpoint_kind({t(k, {320, 768}), t("cond_stage_model.transformer.x", {1})}), CheckpointKind::kSd1);
  EXPECT_EQ(ls::models::detect_checkpoint_kind({t(k, {320, 1024}), t("cond_stage_model.model.x", {1})}), CheckpointKind::kSd2);
  EXPECT_EQ(ls::models::detect_checkpoint_kind({t(k, {384, 1280})}), CheckpointKind::kSdxlRefiner);
  EXPECT_EQ(ls::models::detect_checkpoint_kind({t(k, {640, 2048})}), CheckpointKind::kSdxlBase);
  EXPECT_EQ(ls::models::detect_checkpoint_kind({t("lora_unet_input_blocks_4_1_proj_in.alpha", {})}), CheckpointKind::kLora);
  EXPECT_EQ(ls::models::detect_checkpoint_kind({t("down_blocks.0.resnets.0.conv1.weight", {320, 320, 3, 3})}), CheckpointKind::kDiffusersUnet);
  EXPECT_EQ(ls::models::detect_checkpoint_kind({t("weight", {3})}), CheckpointKind::kUnknown);
  try {
    ls::models::require_sdxl_base({t(k, {320, 768})}, "v1-5.safetensors");
    FAIL();
  } catch (const ls::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("v1-5.safetensors: this is an SD 1.x checkpoint;", 0), 0u) << e.what();
  }
}

TEST(SdxlConfigFile, TinyJsonMatchesPreset) {
  auto config = ls::models::load_config_file(std::string(ls::test::kSourceDir) + "/configs/sdxl_tiny.json");
  EXPECT_EQ(nlohmann::json(config), nlohmann::json(SdxlConfig::tiny()));
  EXPECT_NO_THROW(SdxlConfig{}.validate("sdxl"));
}

TEST(SdxlConfigFile, InconsistentPartsAreRejected) {
  SdxlConfig c = SdxlConfig::tiny();
  c.unet.context_dim += 1;
  EXPECT_THROW(c.validate("x.json"), ls::Error);
  ls::test::TempDir dir;
  ls::core::write_file_atomic(dir / "bad.json", R"({"unet": {}, "nonsense": {}})");
  EXPECT_THROW(ls::models::load_config_file((dir / "bad.json").string()), ls::Error);
}

}  // namespace
