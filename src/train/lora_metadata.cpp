// kohya's LoRA metadata of a training; see lora_metadata.h. The values follow train_network.py's
// dict entry by entry; where lorastudio has no such option, the value is what kohya's argparse
// default gives (store_true -> "False", default=None -> "None", huber_c 0.1, ...).
#include "train/lora_metadata.h"

#include <cmath>
#include <algorithm>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "a1111/file_hashes.h"
#include "a1111/request_params.h"
#include "core/error.h"
#include "core/strings.h"
#include "io/python_text.h"
#include "lora/kohya_format.h"
#include "train/adafactor.h"
#include "train/dataset_metadata.h"
#include "train/lr_schedule.h"
#include "train/optimizer_args.h"

namespace fs = std::filesystem;

namespace ls::train {
namespace {

using io::python_bool;
using io::python_float;

std::string lm_float_or_none(const std::optional<double>& v) { return v ? python_float(*v) : "None"; }
// kohya's None-default floats that lorastudio keeps as 0 = off.
std::string lm_positive_or_none(double v) { return v > 0 ? python_float(v) : "None"; }

// kohya's int_or_float lr_warmup_steps as given: a step count, or a fraction of the steps.
std::string lm_warmup_text(double v) {
  return v == std::floor(v) ? std::to_string(static_cast<int64_t>(v)) : python_float(v);
}

bool lm_adafactor_relative_step(const TrainConfig& c) {
  return core::ascii_lower(c.optimizer_type) == "adafactor" && parse_adafactor_args(c.optimizer_args).relative_step();
}

// os.path.basename.
std::string lm_basename(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// One hashing at a time in this process: the hash cache file is rewritten through one temp name
// per process (the model's hash runs on a thread beside the VAE's).
std::mutex& lm_hash_cache_mutex() {
  static std::mutex m;
  return m;
}

// kohya (train_network.py): with a vae, ss_vae_name is the path as given, or its file name with
// ss_vae_hash (the old 8-hex hash) and ss_new_vae_hash (the whole file's SHA-256) when it exists;
// kohya's hash functions answer "IsADirectory" for a folder (a diffusers VAE).
void lm_add_vae(LoraMetadata& m, const std::string& vae) {
  if (vae.empty()) return;
  std::error_code ec;
  if (!fs::exists(vae, ec)) {
    m["ss_vae_name"] = vae;
    return;
  }
  m["ss_vae_name"] = lm_basename(vae);
  if (fs::is_directory(vae, ec)) {
    m["ss_vae_hash"] = m["ss_new_vae_hash"] = "IsADirectory";
    return;
  }
  m["ss_vae_hash"] = a1111::legacy_model_hash(vae);
  const std::lock_guard<std::mutex> lock(lm_hash_cache_mutex());
  a1111::FileHashCache cache(a1111::user_cache_dir());
  m["ss_new_vae_hash"] = cache.sha256(vae);
}

// The keys of kohya's options lorastudio does not have, at kohya's "off" values.
void lm_add_absent_features(LoraMetadata& m) {
  const char* const kNone[] = {
      "ss_clip_skip", "ss_scale_weight_norms", "ss_face_crop_aug_range", "ss_training_comment", "ss_validation_seed",
      "ss_max_validation_steps", "ss_validate_every_n_epochs", "ss_validate_every_n_steps",
      "ss_resize_interpolation"};
  for (const char* k : kNone) m[k] = "None";
  const char* const kFalse[] = {
      "ss_lowram", "ss_fp8_base", "ss_fp8_base_unet"};
  for (const char* k : kFalse) m[k] = "False";
  m["ss_validation_split"] = "0.0";
  m["ss_num_validation_images"] = "0";
  // kohya's get_git_revision_hash when sd-scripts is not a git checkout: lorastudio is none.
  m["ss_sd_scripts_commit_hash"] = "(unknown)";
}


}  // namespace

std::string kohya_optimizer_name(const TrainConfig& c) {
  const std::string kind = core::ascii_lower(c.optimizer_type);
  std::string name = c.optimizer_type;
  if (kind == "adamw") name = "torch.optim.adamw.AdamW";
  if (kind == "adafactor") name = "transformers.optimization.Adafactor";
  if (kind == "prodigy") name = "prodigyopt.prodigy.Prodigy";
  std::vector<std::pair<std::string, std::string>> kwargs;
  for (const OptimizerArg& a : split_optimizer_args(c.optimizer_args))
    kwargs.emplace_back(a.key, io::python_literal_str(a.value));
  if (kind == "adafactor") {
    // kohya's get_optimizer: relative_step defaults to True (appended), warmup_init forces it on.
    const std::string relative = python_bool(parse_adafactor_args(c.optimizer_args).relative_step());
    auto it = std::find_if(kwargs.begin(), kwargs.end(), [](const auto& kv) { return kv.first == "relative_step"; });
    if (it == kwargs.end()) kwargs.emplace_back("relative_step", relative);
    else it->second = relative;
  }
  if (kwargs.empty()) return name;
  std::string args;
  for (const auto& [k, v] : kwargs) args += (args.empty() ? "" : ",") + k + "=" + v;
  return name + "(" + args + ")";
}

LoraMetadata run_lora_metadata(const TrainSession& s, const RunStamp& stamp) {
  const TrainConfig& c = s.config;
  const data::Reso reso = s.datasets.front().config.buckets.resolution;  // the one trained at
  LoraMetadata m = lora::network_metadata(s.network_options, c.output_name, reso.height, reso.width);
  // A file is a function of the training alone (a resumed run writes the same bytes); the wall
  // clock goes to the log instead.
  m.erase("modelspec.date");
  m["modelspec.prediction_type"] = c.v_parameterization ? "v" : "epsilon";  // kohya's sai_model_spec PRED_TYPE_*
  // kohya writes args.network_dropout: the key's value (also when network_args' dropout or
  // dim_from_weights decide what the network uses).
  m["ss_network_dropout"] = lm_positive_or_none(c.network_dropout);
  lm_add_absent_features(m);

  m["ss_session_id"] = std::to_string(stamp.session_id);
  m["ss_training_started_at"] = python_float(stamp.started_at);
  m["ss_output_name"] = c.output_name;

  // kohya's Adafactor with relative_step: learning_rate only seeds the "adafactor:<lr>" schedule
  // and args.learning_rate / unet_lr become None (text_encoder_lr was read before: it stays).
  const bool relative_step = lm_adafactor_relative_step(c);
  m["ss_learning_rate"] = relative_step ? "None" : python_float(c.learning_rate);
  m["ss_unet_lr"] = relative_step ? "None" : lm_float_or_none(c.unet_lr);
  m["ss_text_encoder_lr"] = lm_float_or_none(c.text_encoder_lr);
  m["ss_lr_scheduler"] = relative_step ? "adafactor:" + python_float(c.learning_rate)
                                       : lr_schedule_name(s.scheduler->options().kind);
  m["ss_lr_warmup_steps"] = lm_warmup_text(c.lr_warmup_steps);
  m["ss_optimizer"] = kohya_optimizer_name(c);
  m["ss_max_grad_norm"] = python_float(c.max_grad_norm);

  m["ss_max_train_steps"] = std::to_string(s.max_steps);
  m["ss_num_epochs"] = std::to_string(s.num_epochs);
  m["ss_num_batches_per_epoch"] = std::to_string(s.batches_per_epoch);
  // kohya's dataset group counts, with repeats: the reg images before the balancing (what the
  // folders offer), as each ss_datasets entry has them.
  int64_t train_images = 0, reg_images = 0;
  for (const data::DatasetIndex& d : s.datasets) {
    train_images += d.train_images_with_repeats;
    reg_images += d.reg_images_with_repeats;
  }
  m["ss_num_train_images"] = std::to_string(train_images);
  m["ss_num_reg_images"] = std::to_string(reg_images);
  m["ss_gradient_accumulation_steps"] = std::to_string(c.gradient_accumulation_steps);
  m["ss_gradient_checkpointing"] = python_bool(c.gradient_checkpointing);
  m["ss_mixed_precision"] = c.mixed_precision;
  m["ss_full_fp16"] = python_bool(c.full_fp16);
  m["ss_seed"] = std::to_string(s.seed);
  m["ss_max_token_length"] = c.max_token_length ? std::to_string(c.max_token_length) : "None";
  m["ss_cache_latents"] = python_bool(c.cache_latents || c.cache_latents_to_disk);  // kohya: to_disk implies it

  m["ss_noise_offset"] = c.noise_offset != 0 ? python_float(c.noise_offset) : "None";
  m["ss_min_snr_gamma"] = lm_positive_or_none(c.min_snr_gamma);
  // The loss and noise options: kohya's args as str() writes them (None-default ones at 0 = off).
  m["ss_multires_noise_iterations"] = c.multires_noise_iterations ? std::to_string(c.multires_noise_iterations) : "None";
  m["ss_multires_noise_discount"] = python_float(c.multires_noise_discount);
  m["ss_adaptive_noise_scale"] = c.adaptive_noise_scale != 0 ? python_float(c.adaptive_noise_scale) : "None";
  m["ss_ip_noise_gamma"] = lm_positive_or_none(c.ip_noise_gamma);
  m["ss_zero_terminal_snr"] = python_bool(c.zero_terminal_snr);
  m["ss_debiased_estimation"] = python_bool(c.debiased_estimation_loss);
  m["ss_noise_offset_random_strength"] = python_bool(c.noise_offset_random_strength);
  m["ss_ip_noise_gamma_random_strength"] = python_bool(c.ip_noise_gamma_random_strength);
  m["ss_loss_type"] = c.loss_type;
  m["ss_huber_schedule"] = c.huber_schedule;
  m["ss_huber_c"] = python_float(c.huber_c);
  m["ss_huber_scale"] = python_float(c.huber_scale);
  m["ss_prior_loss_weight"] = python_float(c.prior_loss_weight);
  m["ss_caption_dropout_rate"] = python_float(c.caption_dropout_rate);
  m["ss_caption_dropout_every_n_epochs"] = std::to_string(c.caption_dropout_every_n_epochs);
  m["ss_caption_tag_dropout_rate"] = python_float(c.caption_tag_dropout_rate);
  // Not kohya keys: written only when they differ from the full range, which is all kohya trains.
  if (c.min_timestep != 0) m["ss_min_timestep"] = std::to_string(c.min_timestep);
  if (c.max_timestep != 1000) m["ss_max_timestep"] = std::to_string(c.max_timestep);

  lm_add_vae(m, c.vae);
  for (auto& [k, v] : dataset_lora_metadata(c, s.datasets, s.world_size)) m[k] = std::move(v);
  return m;
}

LoraMetadata model_lora_metadata(const std::string& checkpoint, const std::string& cache_dir) {
  LoraMetadata m;
  m["ss_sd_model_name"] = lm_basename(checkpoint);
  std::error_code ec;
  if (fs::is_directory(checkpoint, ec)) {  // kohya's model_hash / calculate_sha256 on a folder
    m["ss_sd_model_hash"] = m["ss_new_sd_model_hash"] = "IsADirectory";
    return m;
  }
  try {
    m["ss_sd_model_hash"] = a1111::legacy_model_hash(checkpoint);
    // One hashing at a time in this process: the cache file is rewritten through one temp name
    // per process, and a second run on the same checkpoint then finds the first one's entry.
    const std::lock_guard<std::mutex> lock(lm_hash_cache_mutex());
    a1111::FileHashCache cache(cache_dir);
    m["ss_new_sd_model_hash"] = cache.sha256(checkpoint);
  } catch (const std::exception&) {
    // Unreadable now (moved mid-run): the name alone, as kohya writes for a path it cannot open.
    m.erase("ss_sd_model_hash");
    m.erase("ss_new_sd_model_hash");
  }
  return m;
}

std::future<LoraMetadata> start_model_lora_metadata(const std::string& checkpoint, const std::string& cache_dir) {
  std::packaged_task<LoraMetadata()> task([checkpoint, cache_dir] { return model_lora_metadata(checkpoint, cache_dir); });
  std::future<LoraMetadata> result = task.get_future();
  std::thread(std::move(task)).detach();  // a packaged_task's future does not block when dropped
  return result;
}

LoraMetadata saved_lora_metadata(LoraMetadata run, const RunStamp& stamp, int epoch, int64_t step) {
  run["ss_epoch"] = std::to_string(epoch);
  run["ss_steps"] = std::to_string(step);
  run["ss_training_finished_at"] = python_float(stamp.started_at);
  return run;
}

}  // namespace ls::train
