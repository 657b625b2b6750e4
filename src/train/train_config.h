// The training configuration: kohya-ss/sd-scripts' option names (train_network.py /
// sdxl_train_network.py argparse, library/train_util.py add_*_arguments) with their defaults,
// read from a TOML file (kohya's --config_file: keys at the top level or one table deep) and
// overridden by `--key value` flags, all through one table of keys. Unknown keys are errors.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/key_table.h"

namespace ls::train {

struct TrainConfig {
  // Model. Paths in a TOML file are relative to the file's folder (as dataset TOMLs here).
  std::string pretrained_model_name_or_path;  // SDXL single-file checkpoint or diffusers folder
  std::string vae;                            // kohya: separate VAE file or folder (replaces the model's)
  std::string model_config;                   // lorastudio: architecture JSON (default: from the file)
  std::string tokenizer;                      // lorastudio: CLIP vocab (bpe_simple_vocab_16e6.txt.gz, ...)
  std::string device = "cpu";                 // lorastudio: torch device ("cpu", "cuda", "cuda:1")

  // Data: a kohya dataset TOML, or kohya's folder convention with the flags below.
  std::string dataset_config;
  std::string train_data_dir, reg_data_dir;
  std::array<int, 2> resolution{1024, 1024};  // (width, height); "1024" or "1024,768"
  bool enable_bucket = false;
  int min_bucket_reso = 256, max_bucket_reso = 1024, bucket_reso_steps = 64;
  bool bucket_no_upscale = false;
  std::string caption_extension = ".txt";
  bool shuffle_caption = false;
  int keep_tokens = 0;
  double caption_dropout_rate = 0.0, caption_tag_dropout_rate = 0.0;
  int caption_dropout_every_n_epochs = 0;
  bool flip_aug = false, random_crop = false;
  int train_batch_size = 1;

  // Network (kohya networks.lora).
  std::string network_module = "networks.lora";  // or "lycoris.kohya" (lora/lycoris_args.h)
  int network_dim = 4;
  double network_alpha = 1.0;
  double network_dropout = 0.0;
  int conv_dim = 0;  // also accepted inside network_args ("conv_dim=4")
  double conv_alpha = 1.0;
  std::vector<std::string> network_args;  // conv_dim, conv_alpha, rank_dropout, module_dropout
  bool network_train_unet_only = false, network_train_text_encoder_only = false;
  std::string network_weights;    // a kohya LoRA to continue training from
  bool dim_from_weights = false;  // every module's rank and alpha from network_weights

  // Optimizer and schedule.
  std::string optimizer_type = "AdamW";  // AdamW | Adafactor | Prodigy (case-insensitive, as kohya)
  std::vector<std::string> optimizer_args;
  double learning_rate = 2e-6;  // kohya's default
  std::optional<double> unet_lr, text_encoder_lr;
  std::string lr_scheduler = "constant";
  double lr_warmup_steps = 0;  // < 1: a fraction of the total steps (kohya)
  int lr_scheduler_num_cycles = 1;
  double lr_scheduler_power = 1.0;
  double max_grad_norm = 1.0;  // 0 = no clipping

  // Run length.
  std::optional<int> max_train_epochs;  // wins over max_train_steps
  int max_train_steps = 1600;
  int gradient_accumulation_steps = 1;
  std::optional<uint64_t> seed;  // unset: drawn once and written to the effective config
  bool scale_lr = false;          // learning rates x images per optimizer step (diffusers' --scale_lr)

  // Data parallel (several ranks: `--nproc N`, torchrun / Slurm environment).
  std::optional<double> ddp_timeout;  // minutes a rank waits for the others (kohya; unset: 30, torch's)
  int ddp_check_every_n_steps = 0;    // lorastudio: compare the ranks' LoRA checksums every N steps (0: off)

  // Objective.
  double min_snr_gamma = 0.0;  // 0 = off
  double noise_offset = 0.0;
  double prior_loss_weight = 1.0;
  int min_timestep = 0, max_timestep = 1000;
  int max_token_length = 0;  // 0 = 75 tokens; 150 or 225
  // kohya's loss and noise options (train_util.add_training_arguments, custom_train_functions).
  std::string loss_type = "l2";  // l2 | l1 | huber | smooth_l1
  std::string huber_schedule = "snr";  // constant | exponential | snr
  double huber_c = 0.1, huber_scale = 1.0;
  bool v_parameterization = false;  // the UNet predicts the velocity (v-prediction fine-tunes)
  bool zero_terminal_snr = false;   // rescale the schedule so t = 999 is pure noise
  bool scale_v_pred_loss_like_noise_pred = false;
  double v_pred_like_loss = 0.0;  // 0 = off
  bool debiased_estimation_loss = false;
  bool noise_offset_random_strength = false;
  double adaptive_noise_scale = 0.0;  // 0 = off (kohya: None); needs noise_offset
  int multires_noise_iterations = 0;  // 0 = off
  double multires_noise_discount = 0.3;
  double ip_noise_gamma = 0.0;  // 0 = off
  bool ip_noise_gamma_random_strength = false;
  bool masked_loss = false;  // mask images (conditioning_data_dir in the dataset TOML) weigh the loss
  bool alpha_mask = false;   // folder mode: the images' alpha channels weigh the loss (a subset key too)

  // Precision, memory, caches.
  bool gradient_checkpointing = false;
  std::string mixed_precision = "no";  // no | fp16 | bf16
  bool full_bf16 = false, full_fp16 = false;
  std::string save_precision;  // "" = float (the LoRA's own dtype) | float | fp16 | bf16
  bool cache_latents = false, cache_latents_to_disk = false;
  bool cache_text_encoder_outputs = false, cache_text_encoder_outputs_to_disk = false;

  // Outputs.
  std::string output_dir;
  std::string output_name = "last";
  std::string save_model_as = "safetensors";  // the only one accepted
  std::optional<int> save_every_n_epochs, save_every_n_steps;
  bool save_state = false, save_state_on_train_end = false;
  std::string resume;  // a state folder written with save_state

  // Sampling during training (kohya's prompt-file syntax).
  std::string sample_prompts;
  std::optional<int> sample_every_n_epochs, sample_every_n_steps;
  std::string sample_sampler = "ddim";
  bool sample_at_first = false;
};

using TrainKeyType = core::KeyType;
/// One key of the table. resume_may_change: outputs, cadence, file locations, device,
/// checkpointing, which a resumed run may set anew; every other key must keep its saved value (it
/// changes what the run computes).
using TrainKeyInfo = core::Key<TrainConfig>;

/// Every key TrainConfig takes, in the order the effective config is written.
const std::vector<TrainKeyInfo>& train_keys();

/// kohya keys taken and ignored because they change nothing here (xformers, sdpa,
/// max_data_loader_n_workers, ...), each with the reason printed once as a note.
const std::vector<std::pair<std::string, std::string>>& ignored_kohya_keys();
/// The reason `key` is ignored, or nullptr when it is not an ignored kohya key.
const std::string* ignored_kohya_reason(const std::string& key);
/// The row of a kohya key lorastudio refuses unless it holds its off value; nullptr for others.
const TrainKeyInfo* find_unsupported_kohya_key(const std::string& key);

/// The keys a resume may not change that differ between the saved run's config and the resumed
/// one, each as "key old -> new" in TOML text ("(unset)" for an unset optional), in key order.
std::vector<std::string> resume_changes(const TrainConfig& saved, const TrainConfig& now);

/// Reads a kohya-style training TOML. Errors name file:line, the key and, for a misspelt key, the
/// nearest valid one. Relative paths are resolved against the file's folder.
TrainConfig load_train_config(const std::string& path, std::vector<std::string>* notes = nullptr);
TrainConfig parse_train_config(std::string_view text, const std::string& source, const std::string& base_dir,
                               std::vector<std::string>* notes = nullptr);

/// One `--key value` override (value as typed on the command line; bools: true/false/1/0, any case;
/// lists: the value becomes the only entry, as the trainer's parsers split "a=1 b=2"; an empty value
/// resets the key to its default / unset). Relative paths stay relative to the working directory.
/// Ignored kohya keys add a note to *notes; unsupported ones are refused unless at their off value.
void set_train_key(TrainConfig& config, const std::string& key, const std::string& value,
                   std::vector<std::string>* notes = nullptr);

/// One key read from another file (a sweep's [base] or grid): `where` is "file:line", a relative
/// path resolves against base_dir; errors and notes as for a training TOML.
void set_train_key(TrainConfig& config, const std::string& key, const core::KeyValue& value, const std::string& where,
                   const std::string& base_dir, std::vector<std::string>* notes = nullptr);

/// The effective configuration as TOML, every key written (unset optionals omitted); loading it
/// back gives the same TrainConfig.
std::string train_config_toml(const TrainConfig& config);

/// Cross-key rules (one line each): a model and an output_dir, exactly one data source,
/// unet_only vs te_only, timestep range within [0, 1000], names of precisions, schedulers and
/// optimizers, positive counts.
void validate(const TrainConfig& config);

}  // namespace ls::train
