// Separate VAE files: ldm-named (bare, under first_stage_model.), diffusers-named with and without
// config.json, diffusers VAE and pipeline folders all load the same weights (the diffusers-named
// ones reproduce diffusers' own AutoencoderKL outputs), share one fingerprint with the checkpoint's
// VAE when the weights are the same and get another for other weights; and the one-line errors.
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/diffusers_fixture.h"
#include "models/diffusers_folder.h"
#include "models/model_source.h"
#include "models/vae_file.h"

namespace {

namespace fs = std::filesystem;
using ls::models::Components;

// The ldm-named tensors of a model's VAE, under prefix.
std::vector<std::pair<std::string, torch::Tensor>> vae_file_tensors(ls::models::SdxlModel& model, const std::string& prefix) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& p : model.vae->named_parameters()) out.emplace_back(prefix + p.key(), p.value().detach());
  return out;
}

void expect_same_vae(ls::models::AutoencoderKL a, ls::models::AutoencoderKL b) {
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
}

class VaeFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ls::test::TempDir;
    ls::test::write_diffusers_fixture_folder(*dir_ / "pipeline");
    model_ = new ls::models::SdxlModel(
        ls::models::load_sdxl_checkpoint((*dir_ / "pipeline").string(), "", Components::all(), torch::kCPU, torch::kFloat));
    single_ = (*dir_ / "single.safetensors").string();
    ls::models::save_sdxl_checkpoint(single_, *model_, std::nullopt);
  }
  static void TearDownTestSuite() {
    delete model_;
    delete dir_;
  }
  static ls::models::AutoencoderKL load(const std::string& path) {
    ls::models::VaeConfig loaded;
    return ls::models::load_vae_file(path, model_->config, torch::kCPU, torch::kFloat, loaded);
  }
  static inline ls::test::TempDir* dir_ = nullptr;
  static inline ls::models::SdxlModel* model_ = nullptr;
  static inline std::string single_;
};

TEST_F(VaeFiles, EveryNamingLoadsTheSameWeights) {
  const fs::path ldm = *dir_ / "sdxl_vae.safetensors", prefixed = *dir_ / "prefixed.safetensors";
  ls::io::save_safetensors(ldm, vae_file_tensors(*model_, ""));
  ls::io::save_safetensors(prefixed, vae_file_tensors(*model_, "first_stage_model."));
  fs::create_directories(*dir_ / "bare");  // diffusers names, no config.json: shapes tell the architecture
  fs::copy_file(*dir_ / "pipeline" / "vae" / "diffusion_pytorch_model.safetensors",
                *dir_ / "bare" / "vae.safetensors");
  for (const fs::path& p : {ldm, prefixed, *dir_ / "bare" / "vae.safetensors", *dir_ / "pipeline" / "vae",
                            *dir_ / "pipeline" / "vae" / "diffusion_pytorch_model.safetensors", *dir_ / "pipeline"}) {
    SCOPED_TRACE(p.string());
    const auto info = ls::models::inspect_vae_file(p.string());
    EXPECT_EQ(nlohmann::json(info.config).dump(), nlohmann::json(ls::models::VaeConfig::tiny()).dump());
    expect_same_vae(load(p.string()), model_->vae);
    // one identity for one set of weights, and the checkpoint's own
    EXPECT_EQ(ls::models::vae_file_fingerprint(p.string()),
              ls::models::model_part_fingerprint({single_, "", ""}, ls::models::ModelPart::kVae));
  }
}

TEST_F(VaeFiles, ADiffusersNamedFileReproducesDiffusers) {
  auto vae = load((*dir_ / "pipeline" / "vae" / "diffusion_pytorch_model.safetensors").string());
  const ls::io::SafetensorsReader golden(ls::test::diffusers_fixture_dir() / "golden.safetensors");
  torch::NoGradGuard no_grad;
  const auto expected = golden.load("vae.decoded");
  // float32 against diffusers with another summation order: see test_diffusers_folder.cpp
  EXPECT_TRUE(ls::test::all_close(vae->decode(golden.load("vae.latent")), expected, 0.0,
                                  1e-4 * expected.abs().max().item<double>()));
}

TEST_F(VaeFiles, ASeparateVaeReplacesTheModelsAndChangesTheCacheKey) {
  torch::manual_seed(5);
  ls::models::AutoencoderKL other(ls::models::VaeConfig::tiny());
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& p : other->named_parameters()) tensors.emplace_back(p.key(), p.value().detach());
  const std::string path = (*dir_ / "other_vae.safetensors").string();
  ls::io::save_safetensors(path, tensors);
  auto with = ls::models::load_sdxl_model({single_, "", path}, Components::all(), torch::kCPU, torch::kFloat);
  expect_same_vae(with.vae, other);
  EXPECT_EQ(with.config.vae.scale_factor, model_->config.vae.scale_factor);
  using ls::models::ModelPart;
  EXPECT_NE(ls::models::model_part_fingerprint({single_, "", path}, ModelPart::kVae),
            ls::models::model_part_fingerprint({single_, "", ""}, ModelPart::kVae));
  EXPECT_EQ(ls::models::model_part_fingerprint({single_, "", path}, ModelPart::kUnet),
            ls::models::model_part_fingerprint({single_, "", ""}, ModelPart::kUnet));
}

TEST_F(VaeFiles, WrongFilesAreOneLineNamingThePath) {
  // 3 levels: images scale down by 4, not 8
  ls::models::VaeConfig small = ls::models::VaeConfig::tiny();
  small.ch_mult = {1, 1, 2};
  ls::models::AutoencoderKL wrong(small);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& p : wrong->named_parameters()) tensors.emplace_back(p.key(), p.value().detach());
  const std::string path = (*dir_ / "x4_vae.safetensors").string();
  ls::io::save_safetensors(path, tensors);
  std::string e = ls::test::error_of([&] { load(path); });
  EXPECT_NE(e.find(path + ": a VAE that scales images down by 4; the model's VAE does by 8"), std::string::npos) << e;

  ls::models::VaeConfig wide = ls::models::VaeConfig::tiny();
  wide.z_channels = wide.embed_dim = 16;
  ls::models::AutoencoderKL flux_like(wide);
  tensors.clear();
  for (auto& p : flux_like->named_parameters()) tensors.emplace_back(p.key(), p.value().detach());
  const std::string path16 = (*dir_ / "z16_vae.safetensors").string();
  ls::io::save_safetensors(path16, tensors);
  e = ls::test::error_of([&] { load(path16); });
  EXPECT_NE(e.find(path16 + ": a VAE with 16 latent channels; the model's UNet takes 4"), std::string::npos) << e;

  e = ls::test::error_of([&] { load(single_ + ".missing"); });
  EXPECT_NE(e.find("VAE not found"), std::string::npos) << e;

  const std::string lora = (*dir_ / "lora.safetensors").string();
  ls::io::save_safetensors(lora, {{"lora_unet_input_blocks_4_1_proj_in.alpha", torch::ones({})}});
  e = ls::test::error_of([&] { load(lora); });
  EXPECT_NE(e.find(lora + ": holds no VAE"), std::string::npos) << e;
  EXPECT_NE(e.find("a LoRA"), std::string::npos) << e;

  // a truncated VAE: every missing tensor counted in one line
  tensors = vae_file_tensors(*model_, "");
  tensors.erase(tensors.begin() + 3);
  const std::string partial = (*dir_ / "partial_vae.safetensors").string();
  ls::io::save_safetensors(partial, tensors);
  e = ls::test::error_of([&] { load(partial); });
  EXPECT_NE(e.find(partial + ": does not match the VAE its shapes describe (1 missing: "), std::string::npos) << e;
}

}  // namespace
