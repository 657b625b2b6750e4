// The tables of kohya-ss/sd-scripts keys lorastudio does not take (library/train_util.py
// add_*_arguments, train_network.py setup_parser, library/custom_train_functions.py, sdxl_train_util.py),
// each a key a kohya config or a GUI export may well contain.
#include "train/train_config_kohya.h"


namespace ls::train {

namespace {

using Off = core::OffValue::Kind;

struct Refused {
  const char* name;
  Off off;
  const char* text = "";  // kText: the off string
};

constexpr const char* kAttention = "attention is SDPA or plain math, chosen by lorastudio";
constexpr const char* kLoader = "data loading is lorastudio's own";
constexpr const char* kMemory = "memory placement is lorastudio's own";
constexpr const char* kSpeed = "changes speed only";
constexpr const char* kTracker = "TensorBoard / W&B logging is not implemented";
constexpr const char* kConsole = "console output is lorastudio's own";
constexpr const char* kModelspec = "modelspec metadata fields are not taken";
constexpr const char* kHub = "no Hugging Face uploads";
constexpr const char* kKeepAll = "older checkpoints are kept, not deleted";
constexpr const char* kValidation = "used only with validation_split, which is refused";

const std::pair<const char*, const char*> kIgnored[] = {
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
    {"ddp_gradient_as_bucket_view", "gradients are copied into lorastudio's own flat buckets"},
    {"ddp_static_graph", "lorastudio's reducer needs no graph analysis"},
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
    {"validation_seed", kValidation},
    {"validate_every_n_steps", kValidation},
    {"validate_every_n_epochs", kValidation},
    {"max_validation_steps", kValidation},
};

const Refused kRefused[] = {
    // Objective and noise.
    {"v2", Off::kFalse},
    {"min_snr_gamma_soft", Off::kFalse},
    // Network and weights.
    {"scale_weight_norms", Off::kZero},
    {"base_weights", Off::kNone},
    {"base_weights_multiplier", Off::kNone},
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

}  // namespace

std::vector<KohyaOnlyKey> kohya_only_train_keys() {
  std::vector<KohyaOnlyKey> keys;
  for (const auto& [name, why] : kIgnored) keys.push_back({name, why, std::nullopt});
  for (const Refused& r : kRefused) keys.push_back({r.name, "", core::OffValue{r.off, r.text}});
  return keys;
}

}  // namespace ls::train
