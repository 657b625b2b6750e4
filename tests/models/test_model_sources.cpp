// Model sources through the executable: `debug forward` on a diffusers-folder copy of the tiny model
// and on its single-file form gives bit-identical outputs (the same weights into the same modules:
// the key maps move tensors, they never compute), for every component; a separate VAE changes the
// latent cache's key and the sampled image, is named in the PNG as A1111 names it, and is found
// again by --from-png; the tokenizer is found without --tokenizer.
#include <opencv2/core.hpp>

#include "a1111/file_hashes.h"
#include "io/image.h"
#include "io/png_text.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/diffusers_folder.h"
#include "support/support.h"

namespace {

namespace fs = std::filesystem;
using ls::test::run_lorastudio;

class ModelSourcesCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ls::test::TempDir();
    config_ = std::string(ls::test::kSourceDir) + "/configs/sdxl_tiny.json";
    single_ = (*dir_ / "tiny.safetensors").string();
    folder_ = (*dir_ / "tiny-diffusers").string();
    auto r = run_lorastudio("debug make-model --config " + config_ + " --seed 3 --output " + single_);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto model = ls::models::load_sdxl_checkpoint(single_, "", ls::models::Components::all(), torch::kCPU, torch::kFloat);
    ls::models::save_diffusers_folder(folder_, model, std::nullopt);
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::string forward(const std::string& model, const std::string& component, const std::string& tag,
                             const std::string& extra = "") {
    const std::string in = (*dir_ / (component + "_in.safetensors")).string();
    const std::string out = (*dir_ / (component + "_" + tag + ".safetensors")).string();
    if (!fs::exists(in)) {
      auto r = run_lorastudio("debug make-inputs --config " + config_ + " --component " + component +
                              " --batch 2 --height 64 --width 32 --seed 5 --output " + in);
      EXPECT_EQ(r.exit_code, 0) << r.out;
    }
    auto r = run_lorastudio("debug forward --model " + model + " --component " + component + " --inputs " + in +
                            " --output " + out + " " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  }

  static void expect_identical(const std::string& a, const std::string& b) {
    const ls::io::SafetensorsReader x(a), y(b);
    ASSERT_EQ(x.tensors().size(), y.tensors().size());
    for (const auto& info : x.tensors()) EXPECT_TRUE(ls::test::bit_equal(y.load(info.name), x.load(info.name))) << info.name;
  }

  static inline ls::test::TempDir* dir_ = nullptr;
  static inline std::string config_, single_, folder_;
};

TEST_F(ModelSourcesCli, DebugForwardOfTheFolderEqualsTheSingleFile) {
  for (const char* component : {"unet", "text", "vae-encode", "vae-decode"}) {
    SCOPED_TRACE(component);
    expect_identical(forward(single_, component, "single"), forward(folder_, component, "folder"));
  }
}

// A tiny VAE other than the model's, as an ldm-named sdxl_vae.safetensors-style file.
std::string write_other_vae(const fs::path& path) {
  torch::manual_seed(21);
  ls::models::AutoencoderKL vae(ls::models::VaeConfig::tiny());
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& p : vae->named_parameters()) tensors.emplace_back(p.key(), p.value().detach());
  ls::io::save_safetensors(path, tensors);
  return path.string();
}

TEST_F(ModelSourcesCli, ASeparateVaeChangesTheCacheKey) {
  const std::string other = write_other_vae(*dir_ / "other_vae.safetensors");
  // The model's own VAE as a separate file: the same weights, so the same cache entries.
  auto model = ls::models::load_sdxl_checkpoint(single_, "", {false, false, true}, torch::kCPU, torch::kFloat);
  std::vector<std::pair<std::string, torch::Tensor>> own;
  for (auto& p : model.vae->named_parameters()) own.emplace_back(p.key(), p.value().detach());
  const std::string same = (*dir_ / "own_vae.safetensors").string();
  ls::io::save_safetensors(same, own);
  const std::string data = (*dir_ / "ds").string();
  auto r = run_lorastudio("dataset make-synthetic " + data + " --images 3 --min-side 64 --max-side 128 --resolution 128");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string cache = "dataset cache " + data + "/dataset.toml --cache-dir " + (*dir_ / "cache").string();
  const auto run = [&](const std::string& extra) {
    auto result = run_lorastudio(cache + " " + extra);
    EXPECT_EQ(result.exit_code, 0) << result.out;
    return result.out;
  };
  EXPECT_NE(run("--model " + single_).find("0 cached, 3 encoded"), std::string::npos);
  EXPECT_NE(run("--model " + single_ + " --vae " + other).find("0 cached, 3 encoded"), std::string::npos);
  EXPECT_NE(run("--model " + single_ + " --vae " + same).find("3 cached, 0 encoded"), std::string::npos);
  EXPECT_NE(run("--model " + folder_).find("3 cached, 0 encoded"), std::string::npos);  // the folder's VAE is the same
  EXPECT_NE(run("--model " + folder_ + " --vae " + other).find("3 cached, 0 encoded"), std::string::npos);
}

TEST_F(ModelSourcesCli, ASeparateVaeChangesTheImageAndIsInItsParameters) {
  const std::string other = write_other_vae(*dir_ / "sample_vae.safetensors");
  const std::string args = " --tokenizer " + std::string(ls::test::kClipVocab) +
                           " --prompt 'a red cube' --steps 2 --width 64 --height 64 --seed 3 -q";
  const std::string a = (*dir_ / "a.png").string(), b = (*dir_ / "b.png").string(), c = (*dir_ / "c.png").string();
  auto r = run_lorastudio("sample --model " + single_ + args + " -o " + a);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_lorastudio("sample --model " + single_ + " --vae " + other + args + " -o " + b);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const cv::Mat ia = ls::io::read_image_rgb(a), ib = ls::io::read_image_rgb(b);
  EXPECT_GT(cv::norm(ia, ib, cv::NORM_L1), 0.0) << "the VAE did not change the image";
  const std::string text = ls::io::read_png_text_file(b).at("parameters");
  const std::string hash = ls::a1111::file_sha256(other).substr(0, 10);
  EXPECT_NE(text.find("VAE: sample_vae.safetensors, VAE hash: " + hash), std::string::npos) << text;
  EXPECT_EQ(ls::io::read_png_text_file(a).at("parameters").find("VAE"), std::string::npos);
  // --from-png finds the VAE by its path and renders the same pixels
  r = run_lorastudio("sample --tokenizer " + std::string(ls::test::kClipVocab) + " -q --from-png " + b + " -o " + c);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(cv::norm(ib, ls::io::read_image_rgb(c), cv::NORM_L1), 0.0);
}

TEST_F(ModelSourcesCli, MergeConvertsToAFolderAndBack) {
  const std::string folder = (*dir_ / "converted").string(), back = (*dir_ / "back.safetensors").string();
  auto r = run_lorastudio("merge --model " + single_ + " --format diffusers --save_precision fp32 --output " + folder);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_lorastudio("merge --model " + folder + " --save_precision fp32 --output " + back);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const ls::io::SafetensorsReader a(single_), b(back);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& info : a.tensors()) {
    if (info.name.find("logit_scale") != std::string::npos) continue;  // diffusers keeps none (ln 100 after)
    ASSERT_TRUE(b.contains(info.name)) << info.name;
    EXPECT_TRUE(ls::test::bit_equal(b.load(info.name), a.load(info.name))) << info.name;
  }
  r = run_lorastudio("merge --model " + single_ + " --format diffusers --output " + folder);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("already exists"), std::string::npos) << r.out;
}

TEST_F(ModelSourcesCli, AFolderThatIsNoModelIsOneLine) {
  fs::create_directories(*dir_ / "not-a-model");
  auto r = run_lorastudio("debug forward --model " + (*dir_ / "not-a-model").string() +
                          " --component unet --inputs " + single_ + " --output " + (*dir_ / "x.safetensors").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("without model_index.json"), std::string::npos) << r.out;
}

}  // namespace
