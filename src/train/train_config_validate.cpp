// TrainConfig's cross-key rules, one line each: kohya's own checks (train_network.py, sdxl_train_network.py
// assert_extra_args, train_util.verify_training_args) plus what lorastudio implements (optimizers,
// schedules, networks.lora, safetensors).
#include <algorithm>
#include <cctype>
#include <utility>

#include "core/error.h"
#include "core/strings.h"
#include "text/prompt_windows.h"
#include "train/lr_schedule.h"
#include "train/objective_config.h"
#include "train/train_config.h"

namespace ls::train {
namespace {

// prodigyopt refuses a learning rate <= 0 at construction and, at the first step, groups whose
// lrs differ (one d is adapted for all; a group may sit at 0): caught here, before any loading.
void validate_prodigy_lrs(const TrainConfig& c) {
  LS_CHECK(c.learning_rate > 0, "optimizer_type Prodigy needs learning_rate > 0 (kohya users pass 1), got ",
           c.learning_rate);
  std::vector<std::pair<const char*, double>> lrs;
  if (!c.network_train_unet_only)
    lrs.emplace_back(c.text_encoder_lr ? "text_encoder_lr" : "learning_rate", c.text_encoder_lr.value_or(c.learning_rate));
  if (!c.network_train_text_encoder_only)
    lrs.emplace_back(c.unet_lr ? "unet_lr" : "learning_rate", c.unet_lr.value_or(c.learning_rate));
  for (const auto& [name, lr] : lrs) LS_CHECK(lr >= 0, name, " must be >= 0, got ", lr);
  LS_CHECK(lrs.size() < 2 || lrs[0].second == lrs[1].second || lrs[0].second == 0 || lrs[1].second == 0,
           "optimizer_type Prodigy adapts one step size for both parts, so ", lrs[0].first, " (", lrs[0].second,
           ") and ", lrs[1].first, " (", lrs[1].second, ") must be equal, or one 0 to freeze that part");
}

}  // namespace

void validate(const TrainConfig& c) {
  LS_CHECK(!c.pretrained_model_name_or_path.empty(),
           "pretrained_model_name_or_path is not set; give the SDXL checkpoint (.safetensors) to train on");
  LS_CHECK(!c.output_dir.empty(), "output_dir is not set; give the folder the LoRA files go to");
  const bool toml_data = !c.dataset_config.empty(), folder_data = !c.train_data_dir.empty();
  LS_CHECK(toml_data || folder_data, "no training data: set dataset_config (a kohya dataset TOML) or train_data_dir",
           " (a folder of N_name subfolders)");
  LS_CHECK(!(toml_data && folder_data), "dataset_config and train_data_dir are both set; keep one");
  LS_CHECK(c.reg_data_dir.empty() || folder_data, "reg_data_dir goes with train_data_dir; with dataset_config add a",
           " [[datasets.subsets]] with is_reg = true");
  LS_CHECK(!c.dim_from_weights || !c.network_weights.empty(),
           "dim_from_weights needs network_weights: the LoRA file whose module ranks and alphas to take");
  LS_CHECK(!(c.network_train_unet_only && c.network_train_text_encoder_only),
           "network_train_unet_only and network_train_text_encoder_only are both set: nothing would train; keep one");
  LS_CHECK(c.min_timestep >= 0, "min_timestep must be >= 0, got ", c.min_timestep);
  LS_CHECK(c.max_timestep <= 1000, "max_timestep must be <= 1000, got ", c.max_timestep);
  LS_CHECK(c.min_timestep <= c.max_timestep, "min_timestep (", c.min_timestep, ") must not exceed max_timestep (",
           c.max_timestep, ")");
  LS_CHECK(c.min_timestep < c.max_timestep || c.max_timestep < 1000, "min_timestep = max_timestep = ", c.max_timestep,
           " is not a timestep; equal bounds must name one of 0..999");
  const std::string& mp = c.mixed_precision;
  LS_CHECK(mp == "no" || mp == "fp16" || mp == "bf16", "mixed_precision must be no, fp16 or bf16, got '", mp, "'");
  LS_CHECK(!c.full_bf16 || mp == "bf16", "full_bf16 needs mixed_precision = \"bf16\" (kohya's rule), got '", mp, "'");
  LS_CHECK(!c.full_fp16 || mp == "fp16", "full_fp16 needs mixed_precision = \"fp16\" (kohya's rule), got '", mp, "'");
  const std::string& sp = c.save_precision;
  LS_CHECK(sp.empty() || sp == "float" || sp == "fp16" || sp == "bf16",
           "save_precision must be float, fp16 or bf16 (or unset), got '", sp, "'");
  const std::string opt = core::ascii_lower(c.optimizer_type);
  LS_CHECK(opt == "adamw" || opt == "adafactor" || opt == "prodigy", "optimizer_type '", c.optimizer_type,
           "' is not supported; lorastudio has AdamW, Adafactor and Prodigy");
  if (opt == "prodigy") validate_prodigy_lrs(c);
  parse_lr_schedule(c.lr_scheduler);  // its error names lr_scheduler and lists the valid ones
  LS_CHECK(c.lr_warmup_steps >= 0, "lr_warmup_steps must be >= 0, got ", c.lr_warmup_steps);
  const std::pair<const char*, int> counts[] = {{"train_batch_size", c.train_batch_size},
                                                {"gradient_accumulation_steps", c.gradient_accumulation_steps},
                                                {"max_train_steps", c.max_train_steps},
                                                {"network_dim", c.network_dim}};
  for (const auto& [name, value] : counts) LS_CHECK(value >= 1, name, " must be at least 1, got ", value);
  LS_CHECK(!c.ddp_timeout || *c.ddp_timeout > 0, "ddp_timeout must be a positive number of minutes, got ",
           c.ddp_timeout.value_or(0));
  LS_CHECK(c.ddp_check_every_n_steps >= 0, "ddp_check_every_n_steps must be >= 0 (0: off), got ",
           c.ddp_check_every_n_steps);
  const std::pair<const char*, std::optional<int>> optional_counts[] = {
      {"max_train_epochs", c.max_train_epochs},
      {"save_every_n_epochs", c.save_every_n_epochs},
      {"save_every_n_steps", c.save_every_n_steps}};
  for (const auto& [name, value] : optional_counts)
    LS_CHECK(!value || *value >= 1, name, " must be at least 1 (or unset), got ", value.value_or(0));
  const std::pair<const char*, double> rates[] = {{"caption_dropout_rate", c.caption_dropout_rate},
                                                  {"caption_tag_dropout_rate", c.caption_tag_dropout_rate},
                                                  {"network_dropout", c.network_dropout}};
  for (const auto& [name, value] : rates) LS_CHECK(value >= 0 && value <= 1, name, " must be in [0, 1], got ", value);
  LS_CHECK(c.network_module == "networks.lora" || c.network_module == "lycoris.kohya", "network_module '",
           c.network_module, "' is not supported; lorastudio trains networks.lora and lycoris.kohya (LyCORIS)");
  LS_CHECK(c.save_model_as == "safetensors", "save_model_as '", c.save_model_as,
           "' is not supported; lorastudio writes safetensors");
  text::windows_for_max_token_length(c.max_token_length);  // its error names max_token_length
  const bool te_cache = c.cache_text_encoder_outputs || c.cache_text_encoder_outputs_to_disk;
  LS_CHECK(!te_cache || c.network_train_unet_only, "cache_text_encoder_outputs needs network_train_unet_only: a",
           " text-encoder LoRA needs live text-encoder outputs (kohya's rule)");
  LS_CHECK(!te_cache || (!c.shuffle_caption && c.caption_dropout_rate == 0 && c.caption_tag_dropout_rate == 0 &&
                         c.caption_dropout_every_n_epochs == 0),
           "cache_text_encoder_outputs cannot be used with shuffle_caption, caption_dropout_rate,",
           " caption_tag_dropout_rate or caption_dropout_every_n_epochs: the caption changes between epochs",
           " (kohya's rule)");
  LS_CHECK(!(c.cache_latents || c.cache_latents_to_disk) || !c.random_crop,
           "cache_latents cannot be used with random_crop: a cached latent has one crop (kohya's rule)");
  validate_objective(c);
}

}  // namespace ls::train
