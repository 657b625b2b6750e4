// kohya training configs that use every key issue 19 added, as kohya_ss writes them (flat TOML),
// run unchanged through `lorastudio train FILE`: a LyCORIS LoHa with Prodigy and the loss and
// noise options from a diffusers-folder model, a LoRA with block-wise ranks, and one continued from
// it with network_weights + dim_from_weights, block lr weights, LoRA+, v-prediction on a zero-
// terminal-SNR schedule and alpha masks. Each file's ss_* key set is kohya's (train_network.py's
// dict) and the values say what was used, with kohya's spellings and JSON shapes.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/strings.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/diffusers_folder.h"
#include "models/vae.h"
#include "support/kohya_metadata_keys.h"
#include "support/support.h"
#include "support/training_data.h"
#include "train/train_config.h"

namespace fs = std::filesystem;

namespace ls {
namespace {

class KohyaIssueConfig : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    const std::string single = test::write_tiny_checkpoint(*dir_ / "tiny.safetensors");
    models::SdxlModel model =
        models::load_sdxl_checkpoint(single, "", models::Components::all(), torch::kCPU, torch::kFloat);
    models::save_diffusers_folder(*dir_ / "tiny-diffusers", model, std::nullopt);
    // A separate VAE (ldm names, the tiny architecture, other weights).
    torch::manual_seed(21);
    models::AutoencoderKL other(models::VaeConfig::tiny());
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (auto& p : other->named_parameters()) tensors.emplace_back(p.key(), p.value().detach());
    io::save_safetensors(*dir_ / "other_vae.safetensors", tensors);
    toml_ = test::write_training_dataset(*dir_ / "data", 1);
  }
  static void TearDownTestSuite() { delete dir_; }

  // Runs `lorastudio train` on a flat kohya TOML and returns the final LoRA's metadata.
  static std::map<std::string, std::string> train(const std::string& name, const std::string& keys) {
    const fs::path out = *dir_ / name;
    const fs::path file = *dir_ / (name + ".toml");
    core::write_file_atomic(file, str_cat("dataset_config = \"", toml_, "\"\ntokenizer = \"", test::kClipVocab,
                                          "\"\noutput_dir = \"", out.string(), "\"\noutput_name = \"", name,
                                          "\"\nseed = 4\nmax_train_steps = 2\nsave_model_as = \"safetensors\"\n", keys));
    setenv("OMP_NUM_THREADS", "1", 1);
    const test::CommandResult r = test::run_lorastudio("train " + file.string());
    unsetenv("OMP_NUM_THREADS");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    const fs::path lora = out / (name + ".safetensors");
    if (!fs::exists(lora)) {
      ADD_FAILURE() << lora << " not written";
      return {};
    }
    return io::SafetensorsReader(lora).metadata();
  }

  // The effective config the run wrote (<output_name>-train.toml): it loads back as it ran.
  static train::TrainConfig effective(const std::string& name) {
    return train::load_train_config((*dir_ / name / (name + "-train.toml")).string());
  }

  static void expect_kohya_key_set(const std::map<std::string, std::string>& m, std::set<std::string> extra) {
    std::set<std::string> ss, expected(std::begin(test::kKohyaAlwaysKeys), std::end(test::kKohyaAlwaysKeys));
    for (const auto& [k, v] : m)
      if (k.rfind("ss_", 0) == 0) ss.insert(k);
    expected.insert({"ss_datasets", "ss_tag_frequency", "ss_dataset_dirs", "ss_network_args"});
    expected.insert(extra.begin(), extra.end());
    EXPECT_EQ(ss, expected);
  }

  static test::TempDir* dir_;
  static std::string toml_;
};
test::TempDir* KohyaIssueConfig::dir_ = nullptr;
std::string KohyaIssueConfig::toml_;

TEST_F(KohyaIssueConfig, LycorisProdigyAndTheLossOptionsFromADiffusersFolder) {
  const auto m = train("loha", str_cat(
      "pretrained_model_name_or_path = \"", (*dir_ / "tiny-diffusers").string(), "\"\n",
      "vae = \"", (*dir_ / "other_vae.safetensors").string(), "\"\ncache_latents = true\n",
      "network_module = \"lycoris.kohya\"\nnetwork_dim = 4\nnetwork_alpha = 2\n",
      "network_args = [\"algo=loha\", \"conv_dim=2\", \"conv_alpha=1\", \"use_tucker=False\", \"preset=full\"]\n",
      "optimizer_type = \"Prodigy\"\nlearning_rate = 1.0\nunet_lr = 1.0\ntext_encoder_lr = 1.0\n",
      "optimizer_args = [\"decouple=True\", \"weight_decay=0.01\", \"d_coef=2\", \"use_bias_correction=True\", "
      "\"safeguard_warmup=True\"]\n",
      "loss_type = \"huber\"\nhuber_schedule = \"snr\"\nhuber_c = 0.1\nhuber_scale = 1.0\n",
      "min_snr_gamma = 5\nnoise_offset = 0.0357\nadaptive_noise_scale = 0.00357\nnoise_offset_random_strength = true\n",
      "multires_noise_iterations = 6\nmultires_noise_discount = 0.3\nip_noise_gamma = 0.1\n",
      "ip_noise_gamma_random_strength = true\ndebiased_estimation_loss = true\n"));
  ASSERT_FALSE(m.empty());
  expect_kohya_key_set(m, {"ss_vae_name", "ss_vae_hash", "ss_new_vae_hash"});
  EXPECT_EQ(m.at("ss_vae_name"), "other_vae.safetensors");
  EXPECT_EQ(m.at("ss_network_module"), "lycoris.kohya");
  const nlohmann::json args = nlohmann::json::parse(m.at("ss_network_args"));
  ASSERT_TRUE(args.is_object());
  EXPECT_EQ(args.at("algo"), "loha");
  EXPECT_EQ(args.at("conv_dim"), "2");
  EXPECT_EQ(m.at("ss_optimizer").rfind("prodigyopt.prodigy.Prodigy(", 0), 0u) << m.at("ss_optimizer");
  EXPECT_NE(m.at("ss_optimizer").find("d_coef=2"), std::string::npos) << m.at("ss_optimizer");
  EXPECT_EQ(m.at("ss_loss_type"), "huber");
  EXPECT_EQ(m.at("ss_huber_schedule"), "snr");
  EXPECT_EQ(m.at("ss_multires_noise_iterations"), "6");
  EXPECT_EQ(m.at("ss_ip_noise_gamma"), "0.1");
  EXPECT_EQ(m.at("ss_adaptive_noise_scale"), "0.00357");
  EXPECT_EQ(m.at("ss_debiased_estimation"), "True");
  EXPECT_EQ(m.at("ss_sd_model_name"), "tiny-diffusers");
  const nlohmann::json datasets = nlohmann::json::parse(m.at("ss_datasets"));
  ASSERT_TRUE(datasets.is_array());
  const train::TrainConfig e = effective("loha");
  EXPECT_EQ(e.network_module, "lycoris.kohya");
  EXPECT_EQ(e.optimizer_type, "Prodigy");
  EXPECT_EQ(e.loss_type, "huber");
  EXPECT_EQ(e.multires_noise_iterations, 6);
  EXPECT_EQ(fs::path(e.vae).filename(), "other_vae.safetensors");
  EXPECT_EQ(fs::path(e.pretrained_model_name_or_path).filename(), "tiny-diffusers");
  EXPECT_TRUE(nlohmann::json::parse(m.at("ss_tag_frequency")).is_object());
}

TEST_F(KohyaIssueConfig, BlockWiseThenContinuedWithVPredictionAndMasks) {
  const std::string model = (*dir_ / "tiny.safetensors").string();
  // The tiny model has SDXL's block layout: 9 input blocks, the middle block, 9 output blocks.
  const auto first = train("blocks", str_cat(
      "pretrained_model_name_or_path = \"", model, "\"\nnetwork_module = \"networks.lora\"\nnetwork_dim = 8\n",
      "network_alpha = 4\nlearning_rate = 1e-3\n",
      "network_args = [\"block_dims=2,2,2,2,2,2,2,2,2,4,4,4,4,4,4,4,4,4,4,4,4,4,4\", "
      "\"block_alphas=1,1,1,1,1,1,1,1,1,2,2,2,2,2,2,2,2,2,2,2,2,2,2\", "
      "\"conv_block_dims=1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1\"]\n"));
  ASSERT_FALSE(first.empty());
  expect_kohya_key_set(first, {});
  EXPECT_NE(first.at("ss_network_args").find("block_dims"), std::string::npos);

  const auto m = train("continued", str_cat(
      "pretrained_model_name_or_path = \"", model, "\"\nnetwork_module = \"networks.lora\"\n",
      "network_weights = \"", (*dir_ / "blocks" / "blocks.safetensors").string(), "\"\ndim_from_weights = true\n",
      "learning_rate = 1e-3\nunet_lr = 1e-3\ntext_encoder_lr = 5e-4\n",
      "network_args = [\"down_lr_weight=sine\", \"mid_lr_weight=1.5\", \"up_lr_weight=cosine\", "
      "\"loraplus_lr_ratio=16\"]\n",
      "v_parameterization = true\nzero_terminal_snr = true\nscale_v_pred_loss_like_noise_pred = true\n",
      "alpha_mask = true\nmasked_loss = true\n"));
  ASSERT_FALSE(m.empty());
  expect_kohya_key_set(m, {});
  EXPECT_EQ(m.at("ss_network_module"), "networks.lora");
  EXPECT_EQ(m.at("ss_zero_terminal_snr"), "True");
  EXPECT_EQ(m.at("modelspec.prediction_type"), "v");
  const nlohmann::json args = nlohmann::json::parse(m.at("ss_network_args"));
  EXPECT_EQ(args.at("loraplus_lr_ratio"), "16");
  EXPECT_EQ(args.at("down_lr_weight"), "sine");
  const train::TrainConfig e = effective("continued");
  EXPECT_TRUE(e.dim_from_weights);
  EXPECT_EQ(fs::path(e.network_weights).filename(), "blocks.safetensors");
  EXPECT_TRUE(e.v_parameterization && e.zero_terminal_snr && e.scale_v_pred_loss_like_noise_pred);
  EXPECT_TRUE(e.alpha_mask && e.masked_loss);
}

}  // namespace
}  // namespace ls
