// Diffusers SDXL folders; see diffusers_folder.h.
#include "models/diffusers_folder.h"

#include <memory>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/diffusers_config.h"
#include "models/key_map_diffusers_unet.h"
#include "models/key_map_diffusers_vae.h"
#include "models/mapped_tensors.h"
#include "nn/layers.h"
#include "nn/load_report.h"

namespace fs = std::filesystem;

namespace ls::models {

namespace {

using nlohmann::json;

constexpr const char* kSdxlPipeline = "StableDiffusionXLPipeline";
// open_clip's trained models end with logit_scale at its clamp, ln(100); diffusers drops the value
// (nothing in SDXL reads it), so a folder's TE2 gets this one.
constexpr double kDiffusersLogitScale = 4.605170249938965;

std::string folder_label(const fs::path& folder, const std::string& part) { return (folder / part).string() + "/"; }

// The part folder's weights, readers opened.
struct PartFiles {
  std::vector<std::unique_ptr<io::SafetensorsReader>> readers;
  std::vector<const io::SafetensorsReader*> view() const {
    std::vector<const io::SafetensorsReader*> out;
    for (const auto& r : readers) out.push_back(r.get());
    return out;
  }
};

PartFiles open_part(const fs::path& folder, const std::string& part) {
  PartFiles files;
  for (const auto& path : diffusers_weight_files(folder / part, diffusers_weight_stem(part)))
    files.readers.push_back(std::make_unique<io::SafetensorsReader>(path));
  return files;
}

std::vector<fs::path> shard_files(const fs::path& index) {
  const json j = read_json_file(index);
  LS_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
           ": no weight_map object; not a safetensors shard index");
  std::set<std::string> names;
  for (const auto& item : j["weight_map"].items()) names.insert(item.value().get<std::string>());
  std::vector<fs::path> out;
  for (const auto& n : names) {
    const fs::path p = index.parent_path() / n;
    LS_CHECK(fs::path(n).filename() == n && fs::is_regular_file(p), index.string(), ": shard '", n,
             "' is not in the folder; the download is incomplete");
    out.push_back(p);
  }
  return out;
}

struct PartPlan {
  std::string part;
  torch::nn::Module* module;
  KeyMap map;
  std::set<std::string> optional;
};

std::vector<PartPlan> plan_parts(SdxlModel& model) {
  std::vector<PartPlan> plan;
  if (model.unet) plan.push_back({kDiffusersUnet, model.unet.get(), diffusers_unet_map(model.config.unet), {}});
  if (model.te1) plan.push_back({kDiffusersTe1, model.te1.get(), diffusers_te1_map(), {}});
  if (model.te2) plan.push_back({kDiffusersTe2, model.te2.get(), diffusers_te2_map(), {"logit_scale"}});
  if (model.vae) plan.push_back({kDiffusersVae, model.vae.get(), diffusers_vae_map(model.config.vae), {}});
  return plan;
}

bool diffusers_ignored(const std::string& key) { return is_clip_position_ids(key); }

}  // namespace

bool is_diffusers_folder(const fs::path& path) {
  return fs::is_directory(path) && fs::is_regular_file(path / "model_index.json");
}

void require_sdxl_pipeline(const fs::path& folder) {
  LS_CHECK(fs::is_directory(folder), folder.string(), ": not a folder");
  LS_CHECK(is_diffusers_folder(folder), folder.string(), ": a folder without model_index.json is not a diffusers ",
           "model; give a diffusers SDXL folder or an SDXL .safetensors checkpoint");
  const json index = read_json_file(folder / "model_index.json");
  const std::string cls = index.is_object() ? index.value("_class_name", std::string()) : std::string();
  LS_CHECK(cls == kSdxlPipeline, (folder / "model_index.json").string(), ": a ",
           cls.empty() ? std::string("pipeline without _class_name") : cls, ", not an SDXL base pipeline (",
           kSdxlPipeline, "); lorastudio trains and samples SDXL 1.0 base-architecture models");
  for (const char* part : {kDiffusersUnet, kDiffusersTe1, kDiffusersTe2, kDiffusersVae}) {
    LS_CHECK(index.contains(part) && index[part].is_array() && !index[part].empty() && !index[part][0].is_null(),
             (folder / "model_index.json").string(), ": no '", part, "' part; an SDXL base pipeline has unet, ",
             "text_encoder, text_encoder_2 and vae");
  }
}

SdxlConfig diffusers_folder_config(const fs::path& folder) {
  require_sdxl_pipeline(folder);
  SdxlConfig c;
  const auto file = [&](const char* part) { return folder / part / "config.json"; };
  c.unet = unet_config_from_diffusers(read_json_file(file(kDiffusersUnet)), file(kDiffusersUnet).string());
  c.vae = vae_config_from_diffusers(read_json_file(file(kDiffusersVae)), file(kDiffusersVae).string());
  c.te1 = clip_config_from_transformers(read_json_file(file(kDiffusersTe1)), false, file(kDiffusersTe1).string());
  c.te2 = clip_config_from_transformers(read_json_file(file(kDiffusersTe2)), true, file(kDiffusersTe2).string());
  c.validate(folder.string());
  return c;
}

std::string diffusers_weight_stem(const std::string& part) {
  return part == kDiffusersUnet || part == kDiffusersVae ? "diffusion_pytorch_model" : "model";
}

std::vector<fs::path> diffusers_weight_files(const fs::path& dir, const std::string& stem) {
  for (const char* variant : {"", ".fp16"}) {
    const fs::path single = dir / (stem + variant + ".safetensors");
    if (fs::is_regular_file(single)) return {single};
    const fs::path index = dir / (stem + variant + ".safetensors.index.json");
    if (fs::is_regular_file(index)) return shard_files(index);
  }
  LS_CHECK(fs::is_directory(dir), dir.string(), ": the part folder is missing; the diffusers folder is incomplete");
  for (const char* variant : {"", ".fp16"}) {
    LS_CHECK(!fs::exists(dir / (stem + variant + ".bin")) && !fs::exists(dir / "pytorch_model.bin"), dir.string(),
             ": only PyTorch .bin weights; lorastudio reads .safetensors (diffusers' save_pretrained writes them ",
             "by default)");
  }
  LS_FAIL(dir.string(), ": no ", stem, ".safetensors (nor its .fp16 variant or shards); the diffusers folder is incomplete");
}

SdxlModel load_diffusers_folder(const fs::path& folder, const std::string& config_path, Components parts,
                                c10::Device device, c10::ScalarType dtype) {
  const SdxlConfig config = config_path.empty() ? diffusers_folder_config(folder) : load_config_file(config_path);
  if (!config_path.empty()) require_sdxl_pipeline(folder);
  SdxlModel model;
  {
    nn::SkipInitGuard skip_init;  // every value is about to come from the files
    model = SdxlModel::create(config, parts);
  }
  model.to(device, dtype);
  nn::LoadReport problems;
  for (const PartPlan& p : plan_parts(model)) {
    const PartFiles files = open_part(folder, p.part);
    MappedLoad how{&p.map, p.part + "/", diffusers_ignored, p.optional};
    load_mapped(files.view(), *p.module, how, problems);
  }
  LS_CHECK(problems.empty(), folder.string(), ": does not match the ", config_path.empty() ? "config.json" : config_path,
           " architecture (", problems.summary(), "); check that the folder is complete and its configs are right");
  if (model.te2) {
    torch::NoGradGuard no_grad;
    model.te2->logit_scale.fill_(kDiffusersLogitScale);
  }
  for (const PartPlan& p : plan_parts(model)) p.module->eval();
  return model;
}

std::string diffusers_part_fingerprint(const fs::path& folder, const std::string& part) {
  const SdxlConfig config = diffusers_folder_config(folder);
  const PartFiles files = open_part(folder, part);
  if (part == kDiffusersUnet) return fingerprint_entries(mapped_entries(files.view(), diffusers_unet_map(config.unet), "model.diffusion_model."));
  if (part == kDiffusersVae) return fingerprint_entries(mapped_entries(files.view(), diffusers_vae_map(config.vae), "first_stage_model."));
  const KeyMap& map = part == kDiffusersTe1 ? diffusers_te1_map() : diffusers_te2_map();
  return fingerprint_entries(mapped_entries(files.view(), map, part + "/", diffusers_ignored));
}

void save_diffusers_folder(const fs::path& folder, SdxlModel& model, std::optional<c10::ScalarType> save_dtype,
                           const std::string& tokenizer) {
  LS_CHECK(!fs::exists(folder), folder.string(), ": already exists; give a new folder for the diffusers copy");
  const fs::path tmp = folder.string() + ".partial";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  const bool with_tokenizer = !tokenizer.empty();
  if (with_tokenizer) {
    LS_CHECK(fs::is_regular_file(fs::path(tokenizer) / "vocab.json") && fs::is_regular_file(fs::path(tokenizer) / "merges.txt"),
             tokenizer, ": a diffusers folder's tokenizer is vocab.json + merges.txt; give a folder holding both");
    for (const char* dir : {"tokenizer", "tokenizer_2"}) {
      fs::create_directories(tmp / dir);
      for (const char* f : {"vocab.json", "merges.txt"}) fs::copy_file(fs::path(tokenizer) / f, tmp / dir / f);
      core::write_file_atomic(tmp / dir / "tokenizer_config.json",
                              json{{"tokenizer_class", "CLIPTokenizer"}, {"model_max_length", 77},
                                   {"bos_token", "<|startoftext|>"}, {"eos_token", "<|endoftext|>"},
                                   {"unk_token", "<|endoftext|>"},
                                   {"pad_token", std::string(dir) == "tokenizer" ? "<|endoftext|>" : "!"}}.dump(2));
    }
  }
  const json none = json::array({nullptr, nullptr});
  json index{{"_class_name", kSdxlPipeline}, {"_diffusers_version", "0.42.1"}, {"force_zeros_for_empty_prompt", true},
             {"feature_extractor", none}, {"image_encoder", none},
             {"scheduler", {"diffusers", "EulerDiscreteScheduler"}},
             {"tokenizer", with_tokenizer ? json{"transformers", "CLIPTokenizer"} : none},
             {"tokenizer_2", with_tokenizer ? json{"transformers", "CLIPTokenizer"} : none}};
  // SDXL base's scheduler/scheduler_config.json (lorastudio itself reads no scheduler file).
  fs::create_directories(tmp / "scheduler");
  core::write_file_atomic(tmp / "scheduler" / "scheduler_config.json",
                          json{{"_class_name", "EulerDiscreteScheduler"}, {"beta_end", 0.012},
                               {"beta_schedule", "scaled_linear"}, {"beta_start", 0.00085},
                               {"num_train_timesteps", 1000}, {"prediction_type", "epsilon"}, {"steps_offset", 1},
                               {"timestep_spacing", "leading"}, {"interpolation_type", "linear"}}.dump(2));
  const SdxlConfig& c = model.config;
  for (const PartPlan& p : plan_parts(model)) {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (auto& item : p.module->named_parameters(true)) {
      if (p.optional.count(item.key())) continue;  // logit_scale: not a transformers parameter
      const auto back = p.map.to_diffusers(item.key());
      LS_CHECK(back.has_value(), "diffusers key map: no diffusers name for ", p.part, " tensor ", item.key());
      tensors.emplace_back(back->key, to_diffusers_tensor(item.value().detach(), back->transform).contiguous());
    }
    fs::create_directories(tmp / p.part);
    io::save_safetensors(tmp / p.part / (diffusers_weight_stem(p.part) + ".safetensors"), tensors,
                         {{"format", "pt"}}, save_dtype);
    json config = p.part == kDiffusersUnet ? unet_config_to_diffusers(c.unet)
                  : p.part == kDiffusersVae ? vae_config_to_diffusers(c.vae)
                                            : clip_config_to_transformers(p.part == kDiffusersTe1 ? c.te1 : c.te2,
                                                                          p.part == kDiffusersTe2);
    core::write_file_atomic(tmp / p.part / "config.json", config.dump(2));
    const bool diffusers_lib = p.part == kDiffusersUnet || p.part == kDiffusersVae;
    index[p.part] = {diffusers_lib ? "diffusers" : "transformers",
                     p.part == kDiffusersUnet   ? "UNet2DConditionModel"
                     : p.part == kDiffusersVae  ? "AutoencoderKL"
                     : p.part == kDiffusersTe1  ? "CLIPTextModel"
                                                : "CLIPTextModelWithProjection"};
  }
  core::write_file_atomic(tmp / "model_index.json", index.dump(2));
  fs::rename(tmp, folder);
}

}  // namespace ls::models
