// Diffusers SDXL folders against diffusers 0.42.1 / transformers 5.23.0 themselves: the tiny folder
// of tests/fixtures/diffusers (weights drawn by the fixture's rule) must give the outputs diffusers'
// UNet2DConditionModel, AutoencoderKL and transformers' CLIP text models computed on it
// (golden.safetensors); plus the fp16 variant, writing a folder back, and the load errors.
//
// Tolerance: float32 on both sides with different summation orders (oneDNN/MKL convolutions and
// GEMMs, SDPA vs explicit attention). Each layer adds a relative error of about sqrt(K) u, u =
// 6e-8, K <= 1152 summed terms (3x3x128): ~2e-6; through the ~30 layers of the deepest path and
// GroupNorm/LayerNorm renormalising at every block, 30 x 2e-6 = 6e-5 bounds the error relative to
// the output's largest magnitude; we check 1e-4 of it.
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/diffusers_config.h"
#include "models/diffusers_folder.h"
#include "models/model_source.h"
#include "models/sdxl_conditioner.h"
#include "models/diffusers_fixture.h"

namespace {

namespace fs = std::filesystem;
using ls::models::Components;

constexpr double kDiffusersRelTol = 1e-4;  // see the file comment

const ls::io::SafetensorsReader& diffusers_golden() {
  static const ls::io::SafetensorsReader reader(ls::test::diffusers_fixture_dir() / "golden.safetensors");
  return reader;
}
torch::Tensor golden_tensor(const std::string& name) { return diffusers_golden().load(name); }

::testing::AssertionResult close_to_golden(const torch::Tensor& actual, const std::string& name) {
  const torch::Tensor expected = golden_tensor(name);
  const double scale = expected.abs().max().item<double>();
  const double err = ls::test::norm_rel_error(actual.to(torch::kFloat32), expected);
  std::printf("%s: max |ours - diffusers| / max |diffusers| = %.3g\n", name.c_str(), err);
  return ls::test::all_close(actual.to(torch::kFloat32), expected, 0.0, kDiffusersRelTol * scale);
}

class DiffusersFolder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ls::test::TempDir;
    ls::test::write_diffusers_fixture_folder(folder());
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path folder() { return *dir_ / "tiny-sdxl"; }
  static ls::test::TempDir* dir_;
};
ls::test::TempDir* DiffusersFolder::dir_ = nullptr;

TEST_F(DiffusersFolder, ConfigIsTheTinyArchitecture) {
  const auto config = ls::models::diffusers_folder_config(folder());
  EXPECT_EQ(nlohmann::json(config).dump(), nlohmann::json(ls::models::SdxlConfig::tiny()).dump());
}

TEST_F(DiffusersFolder, UnetMatchesDiffusers) {
  auto model = ls::models::load_sdxl_checkpoint(folder().string(), "", {true, false, false}, torch::kCPU, torch::kFloat);
  torch::NoGradGuard no_grad;
  const auto out = model.unet->forward(golden_tensor("unet.x"), golden_tensor("unet.t"), golden_tensor("unet.context"),
                                       golden_tensor("unet.y"));
  EXPECT_TRUE(close_to_golden(out, "unet.out"));
}

TEST_F(DiffusersFolder, SizeEmbeddingIsDiffusersAddTimeProj) {
  // diffusers' add_time_proj over time_ids (orig h, w, crop top, left, target h, w) = SGM's y.
  const auto ids = golden_tensor("unet.time_ids");
  const auto y = ls::models::size_embedding(golden_tensor("unet.text_embeds"), ids.slice(1, 0, 2), ids.slice(1, 2, 4),
                                            ids.slice(1, 4, 6));
  EXPECT_TRUE(ls::test::all_close(y, golden_tensor("unet.y"), 0.0, 1e-6));  // |sin|,|cos| <= 1, one rounding each
}

TEST_F(DiffusersFolder, TextEncodersMatchTransformers) {
  auto model = ls::models::load_sdxl_checkpoint(folder().string(), "", {false, true, false}, torch::kCPU, torch::kFloat);
  torch::NoGradGuard no_grad;
  const auto ids = golden_tensor("te.ids");
  const auto te1 = model.te1->forward(ids);
  EXPECT_TRUE(close_to_golden(te1.penultimate, "te1.penultimate"));
  EXPECT_TRUE(close_to_golden(te1.last, "te1.last"));
  const auto te2 = model.te2->forward(ids);
  EXPECT_TRUE(close_to_golden(te2.penultimate, "te2.penultimate"));
  EXPECT_TRUE(close_to_golden(te2.pooled, "te2.text_embeds"));  // text_projection transposed on load
}

TEST_F(DiffusersFolder, VaeMatchesDiffusers) {
  auto model = ls::models::load_sdxl_checkpoint(folder().string(), "", {false, false, true}, torch::kCPU, torch::kFloat);
  torch::NoGradGuard no_grad;
  const auto moments = model.vae->encode(golden_tensor("vae.image"));
  EXPECT_TRUE(close_to_golden(moments.mean, "vae.mean"));
  EXPECT_TRUE(close_to_golden(moments.logvar, "vae.logvar"));
  EXPECT_TRUE(close_to_golden(model.vae->decode(golden_tensor("vae.latent")), "vae.decoded"));
}

TEST_F(DiffusersFolder, WrittenBackGivesTheSameFilesAndSingleFileTensors) {
  auto model = ls::models::load_sdxl_checkpoint(folder().string(), "", Components::all(), torch::kCPU, torch::kFloat);
  const fs::path copy = *dir_ / "copy";
  ls::models::save_diffusers_folder(copy, model, std::nullopt);
  for (const char* part : {"unet", "vae", "text_encoder", "text_encoder_2"}) {
    const std::string stem = ls::models::diffusers_weight_stem(part);
    const ls::io::SafetensorsReader original(folder() / part / (stem + ".safetensors"));
    const ls::io::SafetensorsReader written(copy / part / (stem + ".safetensors"));
    ASSERT_EQ(original.tensors().size(), written.tensors().size()) << part;
    for (const auto& info : original.tensors()) {
      // transformers 5 wrote TE1 without "text_model."; lorastudio writes the hub's spelling
      const bool bare = std::string(part) == "text_encoder" && info.name.rfind("text_model.", 0) != 0;
      const std::string name = bare ? "text_model." + info.name : info.name;
      ASSERT_TRUE(written.contains(name)) << part << "/" << name;
      EXPECT_TRUE(torch::equal(original.load(info.name), written.load(name))) << part << "/" << name;
    }
  }
  EXPECT_EQ(nlohmann::json(ls::models::diffusers_folder_config(copy)).dump(), nlohmann::json(model.config).dump());
  auto again = ls::models::load_sdxl_checkpoint(copy.string(), "", Components::all(), torch::kCPU, torch::kFloat);
  const auto a = ls::models::checkpoint_tensors(model), b = ls::models::checkpoint_tensors(again);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
}

TEST_F(DiffusersFolder, SingleFileFormRoundTripsThroughAFolder) {
  ls::test::TempDir dir;
  torch::manual_seed(11);
  auto model = ls::models::SdxlModel::create(ls::models::SdxlConfig::tiny(), Components::all());
  ls::models::save_diffusers_folder(dir / "folder", model, std::nullopt);
  auto loaded = ls::models::load_sdxl_checkpoint((dir / "folder").string(), "", Components::all(), torch::kCPU, torch::kFloat);
  const auto a = ls::models::checkpoint_tensors(model), b = ls::models::checkpoint_tensors(loaded);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    // logit_scale is not stored by diffusers: the loader sets open_clip's ln(100)
    if (a[i].first.find("logit_scale") != std::string::npos) continue;
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
  EXPECT_FALSE(fs::exists(dir / "folder.partial"));
}

TEST_F(DiffusersFolder, VaeFingerprintEqualsTheSingleFileOne) {
  auto model = ls::models::load_sdxl_checkpoint(folder().string(), "", Components::all(), torch::kCPU, torch::kFloat);
  ls::test::TempDir dir;
  const std::string single = (dir / "single.safetensors").string();
  ls::models::save_sdxl_checkpoint(single, model, std::nullopt);
  using ls::models::ModelPart;
  EXPECT_EQ(ls::models::model_part_fingerprint({folder().string(), "", ""}, ModelPart::kVae),
            ls::models::model_part_fingerprint({single, "", ""}, ModelPart::kVae));
  EXPECT_EQ(ls::models::model_part_fingerprint({folder().string(), "", ""}, ModelPart::kUnet),
            ls::models::model_part_fingerprint({single, "", ""}, ModelPart::kUnet));
}

TEST(DiffusersFolderVariant, Fp16FilesAreReadWhenTheFullPrecisionOnesAreAbsent) {
  ls::test::TempDir dir;
  ls::test::write_diffusers_fixture_folder(dir / "m", ".fp16");
  EXPECT_FALSE(fs::exists(dir / "m" / "unet" / "diffusion_pytorch_model.safetensors"));
  auto model = ls::models::load_sdxl_checkpoint((dir / "m").string(), "", {true, false, false}, torch::kCPU, torch::kFloat);
  const auto weights = ls::test::diffusers_fixture_weights("unet");
  // conv_in.weight: diffusers' name, SGM's input_blocks.0.0.weight
  EXPECT_EQ(weights.front().first, "conv_in.weight");
  const auto params = model.unet->named_parameters();
  EXPECT_TRUE(torch::equal(params["input_blocks.0.0.weight"], weights.front().second.to(torch::kHalf).to(torch::kFloat)));
}

TEST(DiffusersFolderErrors, SayWhatIsWrongAndWhere) {
  ls::test::TempDir dir;
  const auto load = [](const fs::path& p) {
    return ls::test::error_of([&] {
      ls::models::load_sdxl_checkpoint(p.string(), "", Components::all(), torch::kCPU, torch::kFloat);
    });
  };
  fs::create_directories(dir / "empty");
  EXPECT_NE(load(dir / "empty").find("without model_index.json"), std::string::npos) << load(dir / "empty");

  ls::test::write_diffusers_fixture_folder(dir / "sd15");
  auto index = nlohmann::json::parse(ls::core::read_file(dir / "sd15" / "model_index.json"));
  index["_class_name"] = "StableDiffusionPipeline";
  ls::core::write_file_atomic(dir / "sd15" / "model_index.json", index.dump());
  const std::string sd15 = load(dir / "sd15");
  EXPECT_NE(sd15.find("a StableDiffusionPipeline, not an SDXL base pipeline"), std::string::npos) << sd15;
  EXPECT_NE(sd15.find("model_index.json"), std::string::npos) << sd15;

  ls::test::write_diffusers_fixture_folder(dir / "partial");
  fs::remove(dir / "partial" / "vae" / "diffusion_pytorch_model.safetensors");
  const std::string partial = load(dir / "partial");
  EXPECT_NE(partial.find((dir / "partial" / "vae").string() + ": no diffusion_pytorch_model.safetensors"), std::string::npos)
      << partial;

  ls::test::write_diffusers_fixture_folder(dir / "sd15unet");
  auto unet = nlohmann::json::parse(ls::core::read_file(dir / "sd15unet" / "unet" / "config.json"));
  unet["addition_embed_type"] = nullptr;
  ls::core::write_file_atomic(dir / "sd15unet" / "unet" / "config.json", unet.dump());
  const std::string sd = load(dir / "sd15unet");
  EXPECT_NE(sd.find("unet/config.json: addition_embed_type is null"), std::string::npos) << sd;
}

}  // namespace
