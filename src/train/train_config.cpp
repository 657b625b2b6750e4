// The training config's key table and its three uses: reading a kohya-style TOML (kohya-ss/sd-scripts
// library/train_util.py read_config_from_file: keys at the top level or one [section] deep), `--key
// value` overrides, and writing the effective config back. Names and defaults follow train_util.py
// add_*_arguments, train_network.py setup_parser and sdxl_train_util.add_sdxl_training_arguments.
#include "train/train_config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <variant>

#include <toml++/toml.h>

#include "core/error.h"
#include "core/strings.h"
#include "core/nearest_name.h"
#include "train/train_config_kohya.h"

namespace fs = std::filesystem;

namespace ls::train {
namespace {

using C = TrainConfig;
using Field = std::variant<std::string C::*, int C::*, std::optional<int> C::*, double C::*, std::optional<double> C::*,
                           bool C::*, std::vector<std::string> C::*, std::array<int, 2> C::*,
                           std::optional<uint64_t> C::*>;

struct KeyDef {
  TrainKeyInfo info;
  Field field;
  bool non_positive_is_unset = false;  // kohya turns sample_every_n_* <= 0 off (verify_training_args)
};

constexpr TrainKeyType type_of(std::string C::*) { return TrainKeyType::kString; }
constexpr TrainKeyType type_of(int C::*) { return TrainKeyType::kInt; }
constexpr TrainKeyType type_of(std::optional<int> C::*) { return TrainKeyType::kOptionalInt; }
constexpr TrainKeyType type_of(double C::*) { return TrainKeyType::kDouble; }
constexpr TrainKeyType type_of(std::optional<double> C::*) { return TrainKeyType::kOptionalDouble; }
constexpr TrainKeyType type_of(bool C::*) { return TrainKeyType::kBool; }
constexpr TrainKeyType type_of(std::vector<std::string> C::*) { return TrainKeyType::kStrings; }
constexpr TrainKeyType type_of(std::array<int, 2> C::*) { return TrainKeyType::kResolution; }
constexpr TrainKeyType type_of(std::optional<uint64_t> C::*) { return TrainKeyType::kSeed; }

// The field's type decides the key's type, so the two cannot disagree; path() marks kPath.
template <typename T>
KeyDef key(const char* name, T C::*field, const char* help) {
  return {{name, type_of(field), help}, field};
}
KeyDef path(const char* name, std::string C::*field, const char* help) {
  return {{name, TrainKeyType::kPath, help}, field};
}
KeyDef sample_every(const char* name, std::optional<int> C::*field, const char* help) {
  KeyDef def = key(name, field, help);
  def.non_positive_is_unset = true;
  return def;
}
KeyDef resume_may_change(KeyDef def) {
  def.info.resume_may_change = true;
  return def;
}

const std::vector<KeyDef>& key_table() {
  static const std::vector<KeyDef> keys = {
      resume_may_change(path("pretrained_model_name_or_path", &C::pretrained_model_name_or_path,
                        "SDXL single-file checkpoint")),
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
      key("network_module", &C::network_module, "LoRA implementation: networks.lora only"),
      key("network_dim", &C::network_dim, "LoRA rank"),
      key("network_alpha", &C::network_alpha, "LoRA alpha (scale = alpha / rank)"),
      key("network_dropout", &C::network_dropout, "dropout of the LoRA down-projection outputs"),
      key("conv_dim", &C::conv_dim, "LoRA rank of 3x3 convolutions (0: none; also network_args conv_dim)"),
      key("conv_alpha", &C::conv_alpha, "alpha of the convolution LoRA"),
      key("network_args", &C::network_args, "network arguments \"key=value\" (conv_dim, rank_dropout, ...)"),
      key("network_train_unet_only", &C::network_train_unet_only, "train the U-Net LoRA only"),
      key("network_train_text_encoder_only", &C::network_train_text_encoder_only, "train the text-encoder LoRA only"),
      key("optimizer_type", &C::optimizer_type, "AdamW or Adafactor"),
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
      key("min_snr_gamma", &C::min_snr_gamma, "min-SNR loss weighting gamma (0: off)"),
      key("noise_offset", &C::noise_offset, "noise offset (0: off)"),
      key("prior_loss_weight", &C::prior_loss_weight, "loss weight of regularisation images"),
      key("min_timestep", &C::min_timestep, "smallest training timestep"),
      key("max_timestep", &C::max_timestep, "timestep bound, exclusive (at most 1000)"),
      key("max_token_length", &C::max_token_length, "caption tokens: 0 (75), 150 or 225"),
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
  return keys;
}

const KeyDef* find_key(const std::string& name) {
  for (const KeyDef& def : key_table())
    if (def.info.name == name) return &def;
  return nullptr;
}

// " (did you mean 'network_dim'?)" with `open`/`close` around the name, or "".
std::string did_you_mean(const std::string& name, const char* open, const char* close) {
  std::vector<std::string> names;
  for (const KeyDef& def : key_table()) names.push_back(def.info.name);
  const std::string best = core::nearest_name(name, names);
  return best.empty() ? std::string() : str_cat(" (did you mean ", open, best, close, "?)");
}

std::string quote(const std::string& s) { return core::toml_quote(s); }

// A TOML value as written in a config, for messages.
std::string render(const toml::node& n) {
  if (n.is_table()) return "a table";
  if (n.is_string()) return quote(*n.value<std::string>());
  if (const toml::array* a = n.as_array()) {
    std::string out = "[";
    for (size_t i = 0; i < a->size(); ++i) out += (i ? ", " : "") + render((*a)[i]);
    return out + "]";
  }
  std::ostringstream out;
  n.visit([&](auto&& v) { out << v; });
  return out.str();
}

// What a value is being read for: `subject` opens the error, `got` shows the value.
struct Ctx {
  std::string subject;  // "train.toml:3: 'network_dim'" or "--network_dim"
  std::string got;
  [[noreturn]] void fail(const char* expected, const std::string& detail = "") const {
    LS_FAIL(subject, " must be ", expected, detail, ", got ", got);
  }
};

int checked_int(int64_t v, const Ctx& ctx) {
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) ctx.fail("a 32-bit integer");
  return static_cast<int>(v);
}

int reso_side(int64_t v, const Ctx& ctx) {
  if (v < 64 || v > 16384) ctx.fail("an integer, \"W,H\" or [W, H]", " with sides in [64, 16384]");
  return static_cast<int>(v);
}

// ---- values from TOML nodes ----

void from_toml(const toml::node& n, const Ctx& ctx, std::string& out) {
  if (!n.is_string()) ctx.fail("a string");
  out = *n.value<std::string>();
}

void from_toml(const toml::node& n, const Ctx& ctx, int& out) {
  if (!n.is_integer()) ctx.fail("an integer");
  out = checked_int(*n.value<int64_t>(), ctx);
}

void from_toml(const toml::node& n, const Ctx& ctx, std::optional<int>& out) {
  int v = 0;
  from_toml(n, ctx, v);
  out = v;
}

void from_toml(const toml::node& n, const Ctx& ctx, double& out) {
  if (!n.is_integer() && !n.is_floating_point()) ctx.fail("a number");
  out = n.is_integer() ? static_cast<double>(*n.value<int64_t>()) : *n.value<double>();
  if (!std::isfinite(out)) ctx.fail("a finite number");
}

// kohya's text_encoder_lr is a list (one per encoder); one value, or equal values, fits this field.
void from_toml(const toml::node& n, const Ctx& ctx, std::optional<double>& out) {
  const toml::array* a = n.as_array();
  if (!a) {
    double v = 0;
    from_toml(n, ctx, v);
    out = v;
    return;
  }
  out.reset();
  for (const toml::node& item : *a) {
    double v = 0;
    from_toml(item, ctx, v);
    if (out && *out != v) ctx.fail("a number", " (different values per text encoder are not supported)");
    out = v;
  }
}

void from_toml(const toml::node& n, const Ctx& ctx, bool& out) {
  if (!n.is_boolean()) ctx.fail("true or false");
  out = *n.value<bool>();
}

// kohya's nargs="*" lists: a TOML array of strings, or one string ("a=1 b=2") kept as one entry.
void from_toml(const toml::node& n, const Ctx& ctx, std::vector<std::string>& out) {
  out.clear();
  if (n.is_string()) {
    out.push_back(*n.value<std::string>());
    return;
  }
  const toml::array* a = n.as_array();
  if (!a) ctx.fail("an array of strings or one string");
  for (const toml::node& item : *a) {
    if (!item.is_string()) ctx.fail("an array of strings or one string");
    out.push_back(*item.value<std::string>());
  }
}

void from_text(const std::string& text, const Ctx& ctx, std::array<int, 2>& out);

void from_toml(const toml::node& n, const Ctx& ctx, std::array<int, 2>& out) {
  if (n.is_integer()) {
    const int side = reso_side(*n.value<int64_t>(), ctx);
    out = {side, side};
  } else if (n.is_string()) {
    from_text(*n.value<std::string>(), ctx, out);
  } else {
    const toml::array* a = n.as_array();
    if (!a || a->size() != 2 || !(*a)[0].is_integer() || !(*a)[1].is_integer())
      ctx.fail("an integer, \"W,H\" or [W, H]");
    out = {reso_side(*(*a)[0].value<int64_t>(), ctx), reso_side(*(*a)[1].value<int64_t>(), ctx)};
  }
}

void from_text(const std::string& text, const Ctx& ctx, std::optional<uint64_t>& out);

// Seeds above 2^63 - 1 do not fit a TOML integer: they are written (and read) as a decimal string.
void from_toml(const toml::node& n, const Ctx& ctx, std::optional<uint64_t>& out) {
  if (n.is_string()) return from_text(*n.value<std::string>(), ctx, out);
  if (!n.is_integer() || *n.value<int64_t>() < 0) ctx.fail("a non-negative integer");
  out = static_cast<uint64_t>(*n.value<int64_t>());
}

// ---- values from command-line text ----

bool parse_int64(const std::string& text, int64_t& out) {
  const std::string t = core::trim(text);
  if (t.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(t.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

bool parse_double(const std::string& text, double& out) {
  const std::string t = core::trim(text);
  if (t.empty()) return false;
  char* end = nullptr;
  out = std::strtod(t.c_str(), &end);
  return *end == '\0';
}

void from_text(const std::string& text, const Ctx&, std::string& out) { out = text; }

void from_text(const std::string& text, const Ctx& ctx, int& out) {
  int64_t v = 0;
  if (!parse_int64(text, v)) ctx.fail("an integer");
  out = checked_int(v, ctx);
}

void from_text(const std::string& text, const Ctx& ctx, std::optional<int>& out) {
  int v = 0;
  from_text(text, ctx, v);
  out = v;
}

void from_text(const std::string& text, const Ctx& ctx, double& out) {
  if (!parse_double(text, out) || !std::isfinite(out)) ctx.fail("a finite number");
}

void from_text(const std::string& text, const Ctx& ctx, std::optional<double>& out) {
  double v = 0;
  from_text(text, ctx, v);
  out = v;
}

void from_text(const std::string& text, const Ctx& ctx, bool& out) {
  const std::string t = core::ascii_lower(core::trim(text));
  if (t == "true" || t == "1") {
    out = true;
  } else if (t == "false" || t == "0") {
    out = false;
  } else {
    ctx.fail("true, false, 1 or 0");
  }
}

// One value is one entry: the trainer's parsers split "a=1 b=2" (optimizer_args.h).
void from_text(const std::string& text, const Ctx&, std::vector<std::string>& out) { out = {text}; }

void from_text(const std::string& text, const Ctx& ctx, std::array<int, 2>& out) {
  const size_t comma = text.find(',');
  int64_t w = 0, h = 0;
  if (!parse_int64(text.substr(0, comma), w)) ctx.fail("an integer, \"W,H\" or [W, H]");
  h = w;
  if (comma != std::string::npos && !parse_int64(text.substr(comma + 1), h)) ctx.fail("an integer, \"W,H\" or [W, H]");
  out = {reso_side(w, ctx), reso_side(h, ctx)};
}

void from_text(const std::string& text, const Ctx& ctx, std::optional<uint64_t>& out) {
  const std::string t = core::trim(text);
  if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos) ctx.fail("a non-negative integer");
  errno = 0;
  const unsigned long long v = std::strtoull(t.c_str(), nullptr, 10);
  if (errno != 0) ctx.fail("a non-negative integer", " below 2^64");
  out = v;
}

// ---- applying a key ----

void reset(TrainConfig& c, const KeyDef& def) {
  static const TrainConfig defaults;
  std::visit([&](auto field) { c.*field = defaults.*field; }, def.field);
}

void finish(TrainConfig& c, const KeyDef& def, const std::string& base_dir) {
  if (def.info.type == TrainKeyType::kPath && !base_dir.empty()) {
    std::string& p = c.*std::get<std::string C::*>(def.field);
    if (!p.empty() && fs::path(p).is_relative()) p = (fs::path(base_dir) / p).lexically_normal().string();
  }
  if (def.non_positive_is_unset) {
    std::optional<int>& v = c.*std::get<std::optional<int> C::*>(def.field);
    if (v && *v <= 0) v.reset();
  }
}

KohyaValue kohya_value(const toml::node& n) {
  KohyaValue v;
  v.shown = render(n);
  if (n.is_boolean()) {
    v.kind = KohyaValue::Kind::kBool;
    v.boolean = *n.value<bool>();
  } else if (n.is_integer() || n.is_floating_point()) {
    v.kind = KohyaValue::Kind::kNumber;
    v.number = n.is_integer() ? static_cast<double>(*n.value<int64_t>()) : *n.value<double>();
  } else if (n.is_string()) {
    v.kind = KohyaValue::Kind::kString;
    v.text = *n.value<std::string>();
  }
  return v;
}

// Ignored and unsupported kohya keys; false when `key` is neither (so it is unknown).
bool apply_kohya_only_key(const std::string& key, const std::string& subject, const KohyaValue& value,
                          std::vector<std::string>* notes) {
  if (const std::string* reason = ignored_kohya_reason(key)) {
    if (notes) notes->push_back(str_cat(key, ": ignored (", *reason, ")"));
    return true;
  }
  if (const UnsupportedKohyaKey* unsupported = find_unsupported_kohya_key(key)) {
    LS_CHECK(is_off(*unsupported, value), subject, ": kohya key ", key, " = ", value.shown,
             " is not supported by lorastudio yet; remove it", off_hint(*unsupported));
    return true;
  }
  return false;
}

void apply_toml_key(TrainConfig& c, const std::string& key, const toml::node& n, const std::string& where,
                    const std::string& base_dir, std::vector<std::string>* notes) {
  if (const KeyDef* def = find_key(key)) {
    if (n.is_string() && n.value<std::string>()->empty()) return reset(c, *def);  // "" = unset
    const Ctx ctx{str_cat(where, ": '", key, "'"), render(n)};
    std::visit([&](auto field) { from_toml(n, ctx, c.*field); }, def->field);
    return finish(c, *def, base_dir);
  }
  if (apply_kohya_only_key(key, where, kohya_value(n), notes)) return;
  const bool dataset_table = key == "datasets";  // [[datasets]]: an array, not a section
  LS_FAIL(where, ": unknown training key '", key, "'", did_you_mean(key, "'", "'"),
          dataset_table ? "; this looks like a dataset config: pass it as dataset_config" : "");
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

// Shortest "%.*g" text that reads back as the same double, made a TOML float.
std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// TOML text of a value; "" for an unset optional (the key is then omitted).
std::string toml_text(const std::string& v) { return quote(v); }
std::string toml_text(int v) { return std::to_string(v); }
std::string toml_text(double v) { return format_double(v); }
std::string toml_text(bool v) { return v ? "true" : "false"; }
std::string toml_text(const std::array<int, 2>& v) { return quote(str_cat(v[0], ",", v[1])); }
std::string toml_text(const std::optional<int>& v) { return v ? toml_text(*v) : ""; }
std::string toml_text(const std::optional<double>& v) { return v ? toml_text(*v) : ""; }
std::string toml_text(const std::optional<uint64_t>& v) {
  if (!v) return "";
  const std::string digits = std::to_string(*v);
  return *v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? digits : quote(digits);
}
std::string toml_text(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + quote(v[i]);
  return out + "]";
}

}  // namespace

const std::vector<TrainKeyInfo>& train_keys() {
  static const std::vector<TrainKeyInfo> infos = [] {
    std::vector<TrainKeyInfo> out;
    for (const KeyDef& def : key_table()) out.push_back(def.info);
    return out;
  }();
  return infos;
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
    apply_toml_key(config, e.key, *e.node, where, base_dir, notes);
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
  if (const KeyDef* def = find_key(key)) {
    if (value.empty()) return reset(config, *def);
    const Ctx ctx{subject, str_cat("'", value, "'")};
    std::visit([&](auto field) { from_text(value, ctx, config.*field); }, def->field);
    return finish(config, *def, "");
  }
  if (apply_kohya_only_key(key, subject, kohya_text_value(value), notes)) return;
  LS_FAIL("unknown option ", subject, did_you_mean(key, "--", ""));
}

std::vector<std::string> resume_changes(const TrainConfig& saved, const TrainConfig& now) {
  std::vector<std::string> changes;
  for (const KeyDef& def : key_table()) {
    if (def.info.resume_may_change) continue;
    std::string before, after;
    std::visit([&](auto field) { before = toml_text(saved.*field), after = toml_text(now.*field); }, def.field);
    if (before != after)
      changes.push_back(str_cat(def.info.name, " ", before.empty() ? "(unset)" : before, " -> ",
                                after.empty() ? "(unset)" : after));
  }
  return changes;
}

std::string train_config_toml(const TrainConfig& config) {
  std::ostringstream out;
  out << "# lorastudio training config (kohya-ss/sd-scripts key names); unset optional keys are omitted\n";
  for (const KeyDef& def : key_table()) {
    std::string value;
    std::visit([&](auto field) { value = toml_text(config.*field); }, def.field);
    if (!value.empty()) out << def.info.name << " = " << value << "\n";
  }
  return out.str();
}

}  // namespace ls::train
