// The tables of kohya-ss/sd-scripts keys lorastudio does not take (library/train_util.py
// add_*_arguments, train_network.py setup_parser, library/custom_train_functions.py, sdxl_train_util.py),
// each a key a kohya config or a GUI export may well contain.
#include "train/train_config_kohya.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "core/error.h"
#include "core/strings.h"

namespace ls::train {

struct UnsupportedKohyaKey {
  enum class Off { kFalse, kZero, kOne, kNone, kText };
  const char* name;
  Off off;
  const char* text = "";  // kText: the off string
};

namespace {

using Off = UnsupportedKohyaKey::Off;

constexpr const char* kAttention = "attention is SDPA or plain math, chosen by lorastudio";
constexpr const char* kLoader = "data loading is lorastudio's own";
constexpr const char* kMemory = "memory placement is lorastudio's own";
constexpr const char* kSpeed = "changes speed only";
constexpr const char* kOneProcess = "lorastudio trains in one process";
constexpr const char* kTracker = "TensorBoard / W&B logging is not implemented";
constexpr const char* kConsole = "console output is lorastudio's own";
constexpr const char* kModelspec = "modelspec metadata fields are not taken";
constexpr const char* kHub = "no Hugging Face uploads";
constexpr const char* kKeepAll = "older checkpoints are kept, not deleted";
constexpr const char* kHuber = "used only with loss_type huber or smooth_l1, which are refused";
constexpr const char* kValidation = "used only with validation_split, which is refused";

const std::vector<std::pair<std::string, std::string>> kIgnored = {
    {"xformers", kAttention},
    {"sdpa", kAttention},
    {"mem_eff_attn", kAttention},
    {"max_data_loader_n_workers", kLoader},
    {"persistent_data_loader_workers", kLoader},
    {"lowram", kMemory},
    {"highvram", kMemory},
    {"cpu_offload_checkpointing", kMemory},
    {"no_half_vae", "lorastudio chooses the VAE's dtype"},
    {"vae_batch_size", kSpeed},
    {"cache_info", kSpeed},
    {"disable_mmap_load_safetensors", kSpeed},
    {"torch_compile", "no torch.compile in libtorch"},
    {"dynamo_backend", "no torch.compile in libtorch"},
    {"tokenizer_cache_dir", "the vocab comes from the tokenizer key"},
    {"ddp_timeout", kOneProcess},
    {"ddp_gradient_as_bucket_view", kOneProcess},
    {"ddp_static_graph", kOneProcess},
    {"logging_dir", kTracker},
    {"log_with", kTracker},
    {"log_prefix", kTracker},
    {"log_tracker_name", kTracker},
    {"log_tracker_config", kTracker},
    {"log_config", kTracker},
    {"wandb_run_name", kTracker},
    {"wandb_api_key", kTracker},
    {"console_log_level", kConsole},
    {"console_log_file", kConsole},
    {"console_log_simple", kConsole},
    {"training_comment", "the metadata comment is not written"},
    {"metadata_title", kModelspec},
    {"metadata_author", kModelspec},
    {"metadata_description", kModelspec},
    {"metadata_license", kModelspec},
    {"metadata_tags", kModelspec},
    {"huggingface_repo_id", kHub},
    {"huggingface_repo_type", kHub},
    {"huggingface_path_in_repo", kHub},
    {"huggingface_token", kHub},
    {"huggingface_repo_visibility", kHub},
    {"save_state_to_huggingface", kHub},
    {"async_upload", kHub},
    {"save_last_n_epochs", kKeepAll},
    {"save_last_n_epochs_state", kKeepAll},
    {"save_last_n_steps", kKeepAll},
    {"save_last_n_steps_state", kKeepAll},
    {"clip_skip", "kohya's SDXL training ignores it too"},
    {"multires_noise_discount", "used only with multires_noise_iterations, which is refused"},
    {"huber_c", kHuber},
    {"huber_schedule", kHuber},
    {"validation_seed", kValidation},
    {"validate_every_n_steps", kValidation},
    {"validate_every_n_epochs", kValidation},
    {"max_validation_steps", kValidation},
};

const UnsupportedKohyaKey kUnsupported[] = {
    // Objective and noise.
    {"v2", Off::kFalse},
    {"v_parameterization", Off::kFalse},
    {"zero_terminal_snr", Off::kFalse},
    {"scale_v_pred_loss_like_noise_pred", Off::kFalse},
    {"v_pred_like_loss", Off::kZero},
    {"debiased_estimation_loss", Off::kFalse},
    {"min_snr_gamma_soft", Off::kFalse},
    {"loss_type", Off::kText, "l2"},
    {"ip_noise_gamma", Off::kZero},
    {"ip_noise_gamma_random_strength", Off::kFalse},
    {"multires_noise_iterations", Off::kZero},
    {"noise_offset_random_strength", Off::kFalse},
    {"adaptive_noise_scale", Off::kZero},
    {"masked_loss", Off::kFalse},
    // Network and weights.
    {"network_weights", Off::kNone},
    {"dim_from_weights", Off::kFalse},
    {"scale_weight_norms", Off::kZero},
    {"base_weights", Off::kNone},
    {"base_weights_multiplier", Off::kNone},
    {"vae", Off::kNone},
    {"fp8_base", Off::kFalse},
    {"fp8_base_unet", Off::kFalse},
    // Optimizer and schedule.
    {"use_8bit_adam", Off::kFalse},
    {"use_lion_optimizer", Off::kFalse},
    {"fused_backward_pass", Off::kFalse},
    {"lr_scheduler_type", Off::kNone},
    {"lr_scheduler_args", Off::kNone},
    {"initial_epoch", Off::kOne},
    {"initial_step", Off::kZero},
    {"skip_until_initial_step", Off::kFalse},
    // Data and captions.
    {"weighted_captions", Off::kFalse},
    {"color_aug", Off::kFalse},
    {"face_crop_aug_range", Off::kNone},
    {"alpha_mask", Off::kFalse},
    {"conditioning_data_dir", Off::kNone},
    {"enable_wildcard", Off::kFalse},
    {"caption_separator", Off::kText, ","},
    {"keep_tokens_separator", Off::kNone},
    {"secondary_separator", Off::kNone},
    {"caption_prefix", Off::kNone},
    {"caption_suffix", Off::kNone},
    {"caption_extention", Off::kNone},
    {"token_warmup_min", Off::kOne},
    {"token_warmup_step", Off::kZero},
    {"in_json", Off::kNone},
    {"dataset_class", Off::kNone},
    {"dataset_repeats", Off::kOne},
    {"validation_split", Off::kZero},
    // Runs and outputs.
    {"save_n_epoch_ratio", Off::kNone},
    {"no_metadata", Off::kFalse},
    {"output_config", Off::kFalse},
    {"debug_dataset", Off::kFalse},
    {"resume_from_huggingface", Off::kFalse},
    {"deepspeed", Off::kFalse},
};

bool text_number_is(const std::string& text, double target) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  return !text.empty() && *end == '\0' && v == target;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& ignored_kohya_keys() { return kIgnored; }

KohyaValue kohya_text_value(const std::string& text) {
  KohyaValue v;
  v.kind = KohyaValue::Kind::kString;
  v.from_text = true;
  v.text = text;
  v.shown = str_cat("'", text, "'");
  return v;
}

const std::string* ignored_kohya_reason(const std::string& key) {
  for (const auto& [name, reason] : kIgnored)
    if (name == key) return &reason;
  return nullptr;
}

const UnsupportedKohyaKey* find_unsupported_kohya_key(const std::string& key) {
  for (const UnsupportedKohyaKey& k : kUnsupported)
    if (key == k.name) return &k;
  return nullptr;
}

bool is_off(const UnsupportedKohyaKey& key, const KohyaValue& v) {
  const bool is_string = v.kind == KohyaValue::Kind::kString;
  if (is_string && v.text.empty()) return true;  // GUIs write None as ""
  // TOML values are typed ("false" the string is truthy in kohya); command-line text is not.
  const bool text = is_string && v.from_text;
  switch (key.off) {
    case Off::kFalse:
      return (v.kind == KohyaValue::Kind::kBool && !v.boolean) || (text && (core::ascii_lower(v.text) == "false" || v.text == "0"));
    case Off::kZero:
    case Off::kOne: {
      const double target = key.off == Off::kZero ? 0.0 : 1.0;
      return (v.kind == KohyaValue::Kind::kNumber && v.number == target) || (text && text_number_is(v.text, target));
    }
    case Off::kNone: return text && core::ascii_lower(v.text) == "none";
    case Off::kText: return is_string && v.text == key.text;
  }
  return false;
}

std::string off_hint(const UnsupportedKohyaKey& key) {
  switch (key.off) {
    case Off::kFalse: return " (or set it to false)";
    case Off::kZero: return " (or set it to 0)";
    case Off::kOne: return " (or set it to 1)";
    case Off::kNone: return "";
    case Off::kText: return str_cat(" (or set it to \"", key.text, "\")");
  }
  return "";
}

}  // namespace ls::train
