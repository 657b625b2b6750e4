// The training config's key table and its three uses: reading a kohya-style TOML (kohya-ss/sd-scripts
// library/train_util.py read_config_from_file: keys at the top level or one [section] deep), `--key
// value` overrides, and writing the effective config back. Names and defaults follow train_util.py
// add_*_arguments, train_network.py setup_parser and sdxl_train_util.add_sdxl_training_arguments.
#include "train/train_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/toml_value.h"
#include "train/train_config_kohya.h"

namespace fs = std::filesystem;

namespace ls::train {
namespace {

using C = TrainConfig;
using Key = core::Key<TrainConfig>;

template <typename F>
Key key(const char* name, F C::*field, const char* help) {
  return core::field_key(name, field, help);
}
Key path(const char* name, std::string C::*field, const char* help) {
  return core::field_key(name, field, help, core::KeyType::kPath);
}
// kohya turns sample_every_n_* <= 0 off (verify_training_args).
Key sample_every(const char* name, std::optional<int> C::*field, const char* help) {
  Key k = key(name, field, help);
  k.set = [set = k.set, field](C& c, const core::KeyValue& v, const std::string& subject) {
    set(c, v, subject);
    if (c.*field && *(c.*field) <= 0) (c.*field).reset();
  };
  return k;
}
Key resume_may_change(Key k) {
  k.resume_may_change = true;
  return k;
}

const core::KeyTable<TrainConfig>& key_table() {
  static const core::KeyTable<TrainConfig> table = [] {
  std::vector<Key> keys = {
      resume_may_change(path("pretrained_model_name_or_path", &C::pretrained_model_name_or_path,
                        "SDXL single-file checkpoint or diffusers folder")),
      path("vae", &C::vae, "separate VAE (.safetensors in ldm or diffusers names, or a diffusers VAE folder) instead of the model's"),
      resume_may_change(path("model_config", &C::model_config,
                        "lorastudio: architecture JSON (default: from the checkpoint)")),
      resume_may_change(path("tokenizer", &C::tokenizer, "lorastudio: CLIP BPE vocab (bpe_simple_vocab_16e6.txt.gz)")),
      resume_may_change(key("device", &C::device, "lorastudio: torch device (cpu, cuda, cuda:1)")),
      resume_may_change(path("dataset_config", &C::dataset_config,
                        "kohya dataset TOML ([general], [[datasets]], [[datasets.subsets]])")),
      resume_may_change(path("train_data_dir", &C::train_data_dir, "folder of N_name image subfolders (N = repeats)")),
      resume_may_change(path("reg_data_dir", &C::reg_data_dir, "folder of N_name regularisation subfolders")),
      key("resolution", &C::resolution, "training size: \"1024\" or \"width,height\""),
      key("enable_bucket", &C::enable_bucket, "aspect-ratio buckets"),
      key("min_bucket_reso", &C::min_bucket_reso, "smallest bucket side"),
      key("max_bucket_reso", &C::max_bucket_reso, "largest bucket side"),
      key("bucket_reso_steps", &C::bucket_reso_steps, "bucket side step"),
      key("bucket_no_upscale", &C::bucket_no_upscale, "never upscale an image to fill its bucket"),
      key("caption_extension", &C::caption_extension, "caption file extension"),
      key("shuffle_caption", &C::shuffle_caption, "shuffle comma-separated tags"),
      key("keep_tokens", &C::keep_tokens, "leading tags kept in place when shuffling"),
      key("caption_dropout_rate", &C::caption_dropout_rate, "probability of an empty caption"),
      key("caption_tag_dropout_rate", &C::caption_tag_dropout_rate, "probability of dropping each tag"),
      key("caption_dropout_every_n_epochs", &C::caption_dropout_every_n_epochs, "empty captions every N epochs (0: off)"),
      key("flip_aug", &C::flip_aug, "random horizontal flips"),
      key("random_crop", &C::random_crop, "random instead of centred crops"),
      key("train_batch_size", &C::train_batch_size, "images per batch"),
      key("network_module", &C::network_module, "networks.lora (kohya LoRA/LoCon) or lycoris.kohya (LyCORIS: network_args algo=lora|locon|loha|lokr, dora_wd, ...)"),
      key("network_dim", &C::network_dim, "LoRA rank"),
      key("network_alpha", &C::network_alpha, "LoRA alpha (scale = alpha / rank)"),
      key("network_dropout", &C::network_dropout, "dropout of the LoRA down-projection outputs"),
      key("conv_dim", &C::conv_dim, "LoRA rank of 3x3 convolutions (0: none; also network_args conv_dim)"),
      key("conv_alpha", &C::conv_alpha, "alpha of the convolution LoRA"),
      key("network_args", &C::network_args, "network arguments \"key=value\" (conv_dim, rank_dropout, ...)"),
      key("network_train_unet_only", &C::network_train_unet_only, "train the U-Net LoRA only"),
      key("network_train_text_encoder_only", &C::network_train_text_encoder_only, "train the text-encoder LoRA only"),
      path("network_weights", &C::network_weights, "kohya LoRA file to continue training from"),
      key("dim_from_weights", &C::dim_from_weights, "take each module's rank and alpha from network_weights"),
      key("optimizer_type", &C::optimizer_type, "AdamW, Adafactor or Prodigy"),
      key("optimizer_args", &C::optimizer_args, "optimizer arguments \"key=value\" (weight_decay=0.01 ...)"),
      key("learning_rate", &C::learning_rate, "base learning rate"),
      key("unet_lr", &C::unet_lr, "learning rate of the U-Net LoRA (default: learning_rate)"),
      key("text_encoder_lr", &C::text_encoder_lr, "learning rate of the text-encoder LoRA (default: learning_rate)"),
      key("lr_scheduler", &C::lr_scheduler,
          "constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial, adafactor"),
      key("lr_warmup_steps", &C::lr_warmup_steps, "warmup steps (below 1: a fraction of all steps)"),
      key("lr_scheduler_num_cycles", &C::lr_scheduler_num_cycles, "restarts of cosine_with_restarts"),
      key("lr_scheduler_power", &C::lr_scheduler_power, "power of the polynomial schedule"),
      key("max_grad_norm", &C::max_grad_norm, "gradient-norm clipping (0: off)"),
      key("max_train_epochs", &C::max_train_epochs, "epochs (overrides max_train_steps)"),
      key("max_train_steps", &C::max_train_steps, "optimizer steps"),
      key("gradient_accumulation_steps", &C::gradient_accumulation_steps, "batches per optimizer step"),
      key("seed", &C::seed, "random seed (unset: drawn once and written here)"),
      key("scale_lr", &C::scale_lr, "multiply the learning rates by batch size x ranks x accumulation"),
      resume_may_change(key("ddp_timeout", &C::ddp_timeout,
                            "minutes a rank waits for the others before stopping (default 30)")),
      resume_may_change(key("ddp_check_every_n_steps", &C::ddp_check_every_n_steps,
                            "lorastudio: check every N steps that all ranks hold the same LoRA (0: off)")),
      key("min_snr_gamma", &C::min_snr_gamma, "min-SNR loss weighting gamma (0: off)"),
      key("noise_offset", &C::noise_offset, "noise offset (0: off)"),
      key("prior_loss_weight", &C::prior_loss_weight, "loss weight of regularisation images"),
      key("min_timestep", &C::min_timestep, "smallest training timestep"),
      key("max_timestep", &C::max_timestep, "timestep bound, exclusive (at most 1000)"),
      key("max_token_length", &C::max_token_length, "caption tokens: 0 (75), 150 or 225"),
      key("loss_type", &C::loss_type, "l2, l1, huber or smooth_l1"),
      key("huber_schedule", &C::huber_schedule, "huber_c over timesteps: constant, exponential or snr"),
      key("huber_c", &C::huber_c, "huber / smooth_l1 threshold (> 0)"),
      key("huber_scale", &C::huber_scale, "huber_c scale (constant and exponential schedules)"),
      key("v_parameterization", &C::v_parameterization, "train a v-prediction model (target: velocity)"),
      key("zero_terminal_snr", &C::zero_terminal_snr, "rescale the noise schedule to zero terminal SNR"),
      key("scale_v_pred_loss_like_noise_pred", &C::scale_v_pred_loss_like_noise_pred,
          "weigh the v-prediction loss by snr / (snr + 1) (needs v_parameterization)"),
      key("v_pred_like_loss", &C::v_pred_like_loss, "add this share of a v-prediction-like loss (0: off)"),
      key("debiased_estimation_loss", &C::debiased_estimation_loss, "weigh the loss by 1 / sqrt(snr)"),
      key("noise_offset_random_strength", &C::noise_offset_random_strength,
          "noise offset strength uniform in [0, noise_offset)"),
      key("adaptive_noise_scale", &C::adaptive_noise_scale,
          "add |mean latent| x this to the noise offset (0: off; needs noise_offset)"),
      key("multires_noise_iterations", &C::multires_noise_iterations, "pyramid noise octaves (0: off; 6-10 usual)"),
      key("multires_noise_discount", &C::multires_noise_discount, "pyramid noise weight per octave"),
      key("ip_noise_gamma", &C::ip_noise_gamma, "input perturbation noise strength (0: off; ~0.1)"),
      key("ip_noise_gamma_random_strength", &C::ip_noise_gamma_random_strength,
          "input perturbation strength uniform in [0, ip_noise_gamma)"),
      key("masked_loss", &C::masked_loss, "weigh the loss by the subsets' mask images (conditioning_data_dir)"),
      key("alpha_mask", &C::alpha_mask, "weigh the loss by the images' alpha channels (folder mode)"),
      resume_may_change(key("gradient_checkpointing", &C::gradient_checkpointing,
                        "recompute activations to save memory")),
      key("mixed_precision", &C::mixed_precision, "no, fp16 or bf16"),
      key("full_bf16", &C::full_bf16, "bf16 weights and gradients (needs mixed_precision bf16)"),
      key("full_fp16", &C::full_fp16, "fp16 weights and gradients (needs mixed_precision fp16)"),
      resume_may_change(key("save_precision", &C::save_precision,
                        "dtype of the saved LoRA: float, fp16 or bf16 (empty: as trained)")),
      key("cache_latents", &C::cache_latents, "encode the images with the VAE once"),
      key("cache_latents_to_disk", &C::cache_latents_to_disk, "keep cached latents on disk"),
      key("cache_text_encoder_outputs", &C::cache_text_encoder_outputs,
          "encode the captions once (needs network_train_unet_only)"),
      key("cache_text_encoder_outputs_to_disk", &C::cache_text_encoder_outputs_to_disk,
          "keep cached text-encoder outputs on disk"),
      resume_may_change(path("output_dir", &C::output_dir, "folder the LoRA files are written to")),
      resume_may_change(key("output_name", &C::output_name, "LoRA file name without extension")),
      resume_may_change(key("save_model_as", &C::save_model_as, "file format: safetensors only")),
      resume_may_change(key("save_every_n_epochs", &C::save_every_n_epochs, "save the LoRA every N epochs")),
      resume_may_change(key("save_every_n_steps", &C::save_every_n_steps, "save the LoRA every N steps")),
      resume_may_change(key("save_state", &C::save_state, "save a resumable training state with each LoRA")),
      resume_may_change(key("save_state_on_train_end", &C::save_state_on_train_end,
                        "save a resumable state at the end")),
      resume_may_change(path("resume", &C::resume, "training-state folder to resume from")),
      resume_may_change(path("sample_prompts", &C::sample_prompts, "prompt file for sample images (kohya syntax)")),
      resume_may_change(sample_every("sample_every_n_epochs", &C::sample_every_n_epochs,
                        "sample every N epochs (0 or less: off)")),
      resume_may_change(sample_every("sample_every_n_steps", &C::sample_every_n_steps,
                        "sample every N steps (0 or less: off)")),
      resume_may_change(key("sample_sampler", &C::sample_sampler, "sampler of the sample images")),
      resume_may_change(key("sample_at_first", &C::sample_at_first, "sample once before training")),
  };
  for (const KohyaOnlyKey& kohya : kohya_only_train_keys()) {
    keys.push_back(kohya.refused_unless ? core::refused_key<TrainConfig>(kohya.name, kohya.refused_unless->kind,
                                                                          kohya.refused_unless->text)
                                        : core::ignored_key<TrainConfig>(kohya.name, kohya.ignored));
  }
  return core::KeyTable<TrainConfig>(std::move(keys));
  }();
  return table;
}

// A path in a file is relative to the file's folder.
core::KeyValue resolved(const Key& k, core::KeyValue v, const std::string& base_dir) {
  if (k.type == core::KeyType::kPath && !base_dir.empty() && !v.text.empty() && fs::path(v.text).is_relative())
    v.text = (fs::path(base_dir) / v.text).lexically_normal().string();
  return v;
}

// One key from a file (`where` = "file:line") or a flag (`where` = "--key"): "" resets a taken
// key to its default / unset; kohya keys that are ignored add a note, those refused unless off
// are checked; an unknown key calls `unknown`.
template <typename Unknown>
void apply_key(TrainConfig& c, const std::string& key, const core::KeyValue& value, const std::string& where,
               const std::string& subject, const std::string& base_dir, std::vector<std::string>* notes,
               Unknown unknown) {
  const Key* k = key_table().find(key);
  if (k && k->taken() && value.kind == core::KeyValue::Kind::kString && value.text.empty()) return k->reset(c);
  const core::Applied applied = key_table().apply(c, key, k ? resolved(*k, value, base_dir) : value, subject, notes);
  if (applied == core::Applied::kRefused)
    LS_FAIL(where, ": kohya key ", key, " = ", value.shown, " is not supported by lorastudio yet; remove it",
            core::off_hint(*k->refused_unless));
  if (applied == core::Applied::kUnknown) unknown();
}

struct Entry {
  std::string key;
  const toml::node* node;
  toml::source_position at;
};

// kohya flattens one level of tables ([model], [training], ...) into one namespace.
std::vector<Entry> flatten(const toml::table& root, const std::string& source) {
  std::vector<Entry> entries;
  for (auto&& [k, node] : root) {
    const toml::table* section = node.as_table();
    if (!section) {
      entries.push_back({std::string(k.str()), &node, node.source().begin});
      continue;
    }
    for (auto&& [k2, node2] : *section) {
      LS_CHECK(!node2.is_table(), source, ":", node2.source().begin.line, ": '", k.str(), ".", k2.str(),
               "' is two tables deep; keys go at the top level or in one [section]");
      entries.push_back({std::string(k2.str()), &node2, node2.source().begin});
    }
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.at.line != b.at.line ? a.at.line < b.at.line : a.at.column < b.at.column;
  });
  return entries;
}

}  // namespace

const std::vector<TrainKeyInfo>& train_keys() {
  static const std::vector<TrainKeyInfo> taken = [] {
    std::vector<TrainKeyInfo> out;
    for (const Key& k : key_table().keys())
      if (k.taken()) out.push_back(k);
    return out;
  }();
  return taken;
}

const std::vector<std::pair<std::string, std::string>>& ignored_kohya_keys() {
  static const std::vector<std::pair<std::string, std::string>> ignored = [] {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Key& k : key_table().keys())
      if (!k.ignored.empty()) out.emplace_back(k.name, k.ignored);
    return out;
  }();
  return ignored;
}

const std::string* ignored_kohya_reason(const std::string& key) {
  const Key* k = key_table().find(key);
  return k && !k->ignored.empty() ? &k->ignored : nullptr;
}

const TrainKeyInfo* find_unsupported_kohya_key(const std::string& key) {
  const Key* k = key_table().find(key);
  return k && k->refused_unless ? k : nullptr;
}

TrainConfig parse_train_config(std::string_view text, const std::string& source, const std::string& base_dir,
                               std::vector<std::string>* notes) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    LS_FAIL(source, ":", e.source().begin.line, ": TOML syntax error: ", e.description());
  }
  TrainConfig config;
  std::map<std::string, uint32_t> first_line;
  for (const Entry& e : flatten(root, source)) {
    const std::string where = str_cat(source, ":", e.at.line);
    const auto [it, fresh] = first_line.emplace(e.key, e.at.line);
    LS_CHECK(fresh, where, ": '", e.key, "' is set twice (first on line ", it->second, "); keep one");
    set_train_key(config, e.key, core::toml_value(*e.node), where, base_dir, notes);
  }
  return config;
}

TrainConfig load_train_config(const std::string& path, std::vector<std::string>* notes) {
  std::error_code ec;
  LS_CHECK(fs::is_regular_file(path, ec), path, ": training config not found; pass a kohya-style training .toml");
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_train_config(text, path, fs::absolute(path).parent_path().string(), notes);
}

void set_train_key(TrainConfig& config, const std::string& key, const std::string& value,
                   std::vector<std::string>* notes) {
  const std::string subject = str_cat("--", key);
  apply_key(config, key, core::text_value(value), subject, subject, "", notes,
            [&] { LS_FAIL("unknown option ", subject, key_table().did_you_mean(key, "--", "")); });
}

void set_train_key(TrainConfig& config, const std::string& key, const core::KeyValue& value, const std::string& where,
                   const std::string& base_dir, std::vector<std::string>* notes) {
  apply_key(config, key, value, where, str_cat(where, ": '", key, "'"), base_dir, notes, [&] {
    LS_FAIL(where, ": unknown training key '", key, "'", key_table().did_you_mean(key),
            key == "datasets" ? "; this looks like a dataset config: pass it as dataset_config" : "");
  });
}

std::vector<std::string> resume_changes(const TrainConfig& saved, const TrainConfig& now) {
  std::vector<std::string> changes;
  for (const TrainKeyInfo& k : train_keys()) {
    if (k.resume_may_change) continue;
    const std::string before = k.text(saved), after = k.text(now);
    if (before != after)
      changes.push_back(str_cat(k.name, " ", before.empty() ? "(unset)" : before, " -> ", after.empty() ? "(unset)" : after));
  }
  return changes;
}

std::string train_config_toml(const TrainConfig& config) {
  std::ostringstream out;
  out << "# lorastudio training config (kohya-ss/sd-scripts key names); unset optional keys are omitted\n";
  for (const TrainKeyInfo& k : train_keys()) {
    const std::string value = k.text(config);
    if (!value.empty()) out << k.name << " = " << value << "\n";
  }
  return out.str();
}

}  // namespace ls::train
