// Training from a diffusers folder with a separate VAE (kohya's `vae`): the run trains, the latent
// cache is keyed by the given VAE, and the LoRA's metadata names the VAE as kohya's
// train_network.py does (ss_vae_name = the file name, ss_vae_hash = the old 8-hex hash,
// ss_new_vae_hash = the file's SHA-256) and the folder model with kohya's "IsADirectory".
#include <filesystem>

#include "a1111/file_hashes.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/diffusers_folder.h"
#include "support/support.h"
#include "support/tiny_training.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace {

namespace fs = std::filesystem;

TEST(TrainSeparateVae, FromAFolderWithAVaeFileAndKohyasVaeMetadata) {
  torch::set_num_threads(1);
  const ls::test::TinyTraining tiny;
  const ls::test::TempDir& dir = tiny.dir;
  auto model = ls::models::load_sdxl_checkpoint(tiny.checkpoint, "", ls::models::Components::all(), torch::kCPU, torch::kFloat);
  ls::models::save_diffusers_folder(dir / "tiny-diffusers", model, std::nullopt);
  torch::manual_seed(21);
  ls::models::AutoencoderKL other(ls::models::VaeConfig::tiny());
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& p : other->named_parameters()) tensors.emplace_back(p.key(), p.value().detach());
  const std::string vae = (dir / "other_vae.safetensors").string();
  ls::io::save_safetensors(vae, tensors);

  ls::train::TrainConfig c = tiny.config((dir / "out").string());
  c.pretrained_model_name_or_path = (dir / "tiny-diffusers").string();
  c.vae = vae;
  c.max_train_steps = 2;
  c.cache_latents_to_disk = true;
  const ls::train::TrainResult r = ls::train::run_training(c);
  ASSERT_FALSE(r.final_lora.empty());
  const ls::io::SafetensorsReader lora(r.final_lora);
  const auto& m = lora.metadata();
  EXPECT_EQ(m.at("ss_vae_name"), "other_vae.safetensors");
  EXPECT_EQ(m.at("ss_vae_hash"), ls::a1111::legacy_model_hash(vae));
  EXPECT_EQ(m.at("ss_new_vae_hash"), ls::a1111::file_sha256(vae));
  EXPECT_EQ(m.at("ss_sd_model_name"), "tiny-diffusers");
  EXPECT_EQ(m.at("ss_sd_model_hash"), "IsADirectory");

  // The cache holds latents of the given VAE: training again without it encodes anew.
  const fs::path data = fs::path(tiny.dataset_toml).parent_path();
  size_t before = 0;
  for (const auto& e : fs::recursive_directory_iterator(data)) before += e.is_regular_file();
  c.vae.clear();
  c.output_dir = (dir / "out2").string();
  ASSERT_FALSE(ls::train::run_training(c).final_lora.empty());
  size_t after = 0;
  for (const auto& e : fs::recursive_directory_iterator(data)) after += e.is_regular_file();
  EXPECT_GT(after, before) << "no new latents for the model's own VAE";
  EXPECT_EQ(ls::io::SafetensorsReader((dir / "out2" / "tiny.safetensors").string()).metadata().count("ss_vae_name"), 0u);
}

}  // namespace
