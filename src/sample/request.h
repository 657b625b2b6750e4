// The request vocabulary: every setting that decides an image (prompt, negative prompt, steps,
// sampler, schedule, CFG, seed, size; the model and the LoRAs with their strengths), declared once.
// ImageSettings holds the values and their defaults; request_fields() gives each its one name —
// the `sample` and `sheet` flag, the sheet TOML key, the sample-prompt key, the cell-id key — with
// the old spellings taken as aliases, its A1111 infotext label, kohya's prompt-file options and
// its help. Infotext, cell ids, sheet keys and both commands' flags are derived from it. Light on
// purpose: nothing from models/ or lora/, so readers of requests need no model code.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "core/key_table.h"

namespace ls::sample {

/// The settings of one image besides the model and the LoRAs.
struct ImageSettings {
  std::string prompt, negative_prompt;
  int64_t steps = 20;
  std::string sampler = "DPM++ 2M";
  std::string schedule_type;  // A1111's "Schedule type"; empty = Automatic, the sampler's default
  double cfg_scale = 7.0;
  int64_t seed = 0;
  int64_t width = 1024, height = 1024;
};

struct LoraSpec {
  std::string path;
  double strength = 1.0;
};

/// Everything that decides one image (together with the model, device and dtype).
struct ImageRequest : ImageSettings {
  std::vector<LoraSpec> loras;
};

/// Where a model comes from.
struct ModelSource {
  std::string checkpoint;  // SDXL single-file .safetensors or diffusers folder
  std::string config;      // architecture JSON for models without lorastudio metadata (optional)
  std::string tokenizer;   // CLIP BPE vocabulary or tokenizer folder; "" = found beside the model
  std::string vae;         // separate VAE replacing the model's (optional)
  std::string prediction = "auto";  // auto (what the model says) | epsilon | v | v_zsnr (models/model_prediction.h)
  c10::Device device = c10::kCPU;
  c10::ScalarType dtype = c10::kFloat;
};

using SettingsMember =
    std::variant<std::string ImageSettings::*, int64_t ImageSettings::*, double ImageSettings::*>;

struct RequestField {
  /// name (the one spelling in every command and file), aliases (older flag names), type, help,
  /// and reading a value into the field.
  core::Key<ImageSettings> key;
  SettingsMember member;
  /// A1111's label in the parameters line ("CFG scale"); fields that share one ("Size": width,
  /// height) are written joined by 'x' in table order. "" = not on that line (the prompts).
  std::string infotext;
  /// A1111's parser needs it on the parameters line (all but "Schedule type").
  bool infotext_required = false;
  /// kohya's sample-prompt options for the field ("l", "scale"); its sampler names differ, so the
  /// sampler's kohya options are read by the prompt-file reader.
  std::vector<std::string> kohya;
  /// The field set back to its default whenever this one is given (a sampler brings its own
  /// schedule unless one is given too).
  std::string resets;
};

/// The fields in the order A1111 writes them.
const std::vector<RequestField>& request_fields();
/// The same rows as a key table over ImageSettings.
const core::KeyTable<ImageSettings>& request_keys();
/// The field named `name` (or an alias); nullptr when none.
const RequestField* find_request_field(const std::string& name);

/// The field's value as plain text, as a person types it ("DPM++ 2M", "7.5", "1024").
std::string field_text(const RequestField& field, const ImageSettings& settings);
/// Copies the field's value from one request to another.
void copy_field(const RequestField& field, const ImageSettings& from, ImageSettings& to);

}  // namespace ls::sample
