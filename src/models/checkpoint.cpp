#include "models/checkpoint.h"

#include <filesystem>
#include <set>
#include <unordered_map>

#include <torch/torch.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/checkpoint_kind.h"
#include "models/diffusers_folder.h"
#include "models/key_map_open_clip.h"
#include "models/mapped_tensors.h"
#include "nn/layers.h"
#include "nn/load_report.h"

namespace ls::models {

namespace {

// TE1 files from transformers < 4.31 carry this buffer; the model recomputes it.
constexpr const char* kTe1PositionIds = "text_model.embeddings.position_ids";

// One part of the checkpoint: its key prefix and the module that receives it.
struct Part {
  std::string prefix;
  torch::nn::Module* module;
  bool open_clip;  // TE2: open_clip names in the file, HF names in the module
};

std::unordered_map<std::string, torch::Tensor> module_tensors(torch::nn::Module& module) {
  std::unordered_map<std::string, torch::Tensor> out;
  for (auto& p : module.named_parameters(true)) out.emplace(p.key(), p.value());
  for (auto& b : module.named_buffers(true)) out.emplace(b.key(), b.value());
  return out;
}

// TE2: open_clip's fused in_proj in the file becomes the module's q/k/v, so one file key may
// fill several module keys; the other parts are name-for-name.
void load_open_clip_part(const io::SafetensorsReader& reader, const Part& part, nn::LoadReport& report) {
  auto targets = module_tensors(*part.module);
  std::set<std::string> filled;
  torch::NoGradGuard no_grad;
  for (const auto& info : reader.tensors()) {
    if (info.name.rfind(part.prefix, 0) != 0) continue;
    std::string key = info.name.substr(part.prefix.size());
    if (hf_keys_for(key).empty()) {
      report.unexpected.push_back(info.name);
      continue;
    }
    for (auto& [hf_key, value] : open_clip_to_hf(key, reader.load(info.name))) {
      auto it = targets.find(hf_key);
      if (it == targets.end()) {
        report.unexpected.push_back(info.name);
      } else if (it->second.sizes() != value.sizes()) {
        report.misshaped.push_back(info.name + " " + nn::shape_str(value.sizes()) + " (model " +
                                   nn::shape_str(it->second.sizes()) + ")");
      } else {
        it->second.copy_(value);
        filled.insert(hf_key);
      }
    }
    reader.release(info.name);
  }
  for (const auto& [key, tensor] : targets)
    if (!filled.count(key)) report.missing.push_back(part.prefix + open_clip_key_for(key));
}

void load_part(const io::SafetensorsReader& reader, const Part& part, nn::LoadReport& report) {
  if (part.open_clip) return load_open_clip_part(reader, part, report);
  nn::LoadOptions options;
  options.prefix = part.prefix;
  options.ignore = [](const std::string& key) { return key == kTe1PositionIds; };
  nn::load_module_state(reader, *part.module, report, options);
}

}  // namespace

SdxlConfig resolve_config(const io::SafetensorsReader& reader, const std::string& config_path) {
  if (!config_path.empty()) return load_config_file(config_path);
  auto it = reader.metadata().find(kConfigMetadataKey);
  if (it == reader.metadata().end()) return SdxlConfig{};
  SdxlConfig config;
  try {
    from_json(nlohmann::json::parse(it->second), config);
  } catch (const std::exception& e) {
    LS_FAIL(reader.path().string(), ": metadata '", kConfigMetadataKey, "' is not a valid model config (",
            e.what(), "); pass --config");
  }
  config.validate(reader.path().string());
  return config;
}

SdxlModel load_sdxl_checkpoint(const std::string& path, const std::string& config_path, Components parts,
                               c10::Device device, c10::ScalarType dtype) {
  if (std::filesystem::is_directory(path)) return load_diffusers_folder(path, config_path, parts, device, dtype);
  io::SafetensorsReader reader(path);
  require_sdxl_base(reader.tensors(), path);
  SdxlConfig config = resolve_config(reader, config_path);

  SdxlModel model;
  {
    nn::SkipInitGuard skip_init;  // every value is about to come from the file
    model = SdxlModel::create(config, parts);
  }
  model.to(device, dtype);

  std::vector<Part> plan;
  if (model.unet) plan.push_back({kUnetPrefix, model.unet.get(), false});
  if (model.te1) plan.push_back({kTe1Prefix, model.te1.get(), false});
  if (model.te2) plan.push_back({kTe2Prefix, model.te2.get(), true});
  if (model.vae) plan.push_back({kVaePrefix, model.vae.get(), false});

  nn::LoadReport problems;
  for (const auto& part : plan) load_part(reader, part, problems);
  LS_CHECK(problems.empty(), path, ": does not match the ", config_path.empty() ? "SDXL" : config_path,
           " architecture (", problems.summary(), "); check that the file is complete and the config is right");
  for (const auto& part : plan) part.module->eval();
  return model;
}

std::vector<std::pair<std::string, torch::Tensor>> checkpoint_tensors(SdxlModel& model) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  auto add_module = [&](torch::nn::Module& module, const std::string& prefix) {
    for (auto& p : module.named_parameters(true)) tensors.emplace_back(prefix + p.key(), p.value().detach());
  };
  if (model.unet) add_module(*model.unet, kUnetPrefix);
  if (model.te1) {
    add_module(*model.te1, kTe1Prefix);
    auto n = model.config.te1.max_positions;
    tensors.emplace_back(std::string(kTe1Prefix) + kTe1PositionIds, torch::arange(n, torch::kLong).unsqueeze(0));
  }
  if (model.te2) {
    std::vector<std::pair<std::string, torch::Tensor>> hf;
    for (auto& p : model.te2->named_parameters(true)) hf.emplace_back(p.key(), p.value().detach());
    torch::NoGradGuard no_grad;
    for (auto& [key, value] : hf_to_open_clip(hf)) tensors.emplace_back(kTe2Prefix + key, value);
  }
  if (model.vae) add_module(*model.vae, kVaePrefix);
  return tensors;
}

void save_sdxl_checkpoint(const std::string& path, SdxlModel& model, std::optional<c10::ScalarType> save_dtype,
                          std::map<std::string, std::string> metadata) {
  auto tensors = checkpoint_tensors(model);
  metadata[kConfigMetadataKey] = nlohmann::json(model.config).dump();
  if (!metadata.count("modelspec.architecture")) metadata["modelspec.architecture"] = "stable-diffusion-xl-v1-base";
  io::save_safetensors(path, tensors, metadata, save_dtype);
}

std::string part_fingerprint(const io::SafetensorsReader& reader, const std::string& prefix) {
  std::vector<FingerprintEntry> entries;
  for (const io::TensorInfo& info : reader.tensors()) {
    if (info.name.rfind(prefix, 0) == 0) entries.push_back({info.name, info.dtype, info.shape, &reader, &info});
  }
  LS_CHECK(!entries.empty(), reader.path().string(), ": no tensors under '", prefix, "'; is this an SDXL checkpoint?");
  return fingerprint_entries(std::move(entries));
}

}  // namespace ls::models
