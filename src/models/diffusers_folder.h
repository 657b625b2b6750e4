// Diffusers-format SDXL models: a folder with model_index.json (StableDiffusionXLPipeline) and the
// parts unet/, text_encoder/, text_encoder_2/, vae/ (config.json + safetensors weights: the full
// precision file, else diffusers' fp16 variant "*.fp16.safetensors", either possibly sharded with
// an *.safetensors.index.json), tokenizer/ (vocab.json + merges.txt). Loaded into the same
// modules as a single-file checkpoint through the key maps of key_map_diffusers*.h, and written
// back the way diffusers' save_pretrained lays a pipeline out.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "models/sdxl_model.h"

namespace ls::models {

/// The part folders and their weight file stems.
inline constexpr const char* kDiffusersUnet = "unet";
inline constexpr const char* kDiffusersVae = "vae";
inline constexpr const char* kDiffusersTe1 = "text_encoder";
inline constexpr const char* kDiffusersTe2 = "text_encoder_2";

/// A folder holding model_index.json.
bool is_diffusers_folder(const std::filesystem::path& path);

/// Fails (one line naming the folder) unless model_index.json names StableDiffusionXLPipeline,
/// saying which pipeline it is otherwise.
void require_sdxl_pipeline(const std::filesystem::path& folder);

/// The architecture the parts' config.json files describe (checked: SDXL-shaped, parts fitting).
SdxlConfig diffusers_folder_config(const std::filesystem::path& folder);

/// The safetensors files holding one part: <stem>.safetensors, else its shards (<stem>.safetensors.index.json),
/// else the fp16 variant of either. stem: "diffusion_pytorch_model" (unet, vae) or "model" (text encoders).
/// Fails naming the folder and what it holds instead (.bin weights, nothing).
std::vector<std::filesystem::path> diffusers_weight_files(const std::filesystem::path& part_dir, const std::string& stem);
/// The stem of a part's weights.
std::string diffusers_weight_stem(const std::string& part);

/// Loads the asked-for parts (config_path: an architecture JSON instead of the config.json files).
/// Every missing, unexpected or mis-shaped tensor of every part is listed in one error.
SdxlModel load_diffusers_folder(const std::filesystem::path& folder, const std::string& config_path, Components parts,
                                c10::Device device, c10::ScalarType dtype);

/// SHA-256 of one part ("unet", "vae", ...) in lorastudio's names and shapes (see mapped_tensors.h):
/// a VAE gives the same value as the same weights inside a single-file checkpoint.
std::string diffusers_part_fingerprint(const std::filesystem::path& folder, const std::string& part);

/// Writes every present part as diffusers' save_pretrained would (model_index.json, config.json
/// files, weights as save_dtype when given); tokenizer (a folder with vocab.json + merges.txt) is
/// copied to tokenizer/ and tokenizer_2/ when given. The folder must not exist; it appears whole
/// (written beside it, then renamed).
void save_diffusers_folder(const std::filesystem::path& folder, SdxlModel& model,
                           std::optional<c10::ScalarType> save_dtype, const std::string& tokenizer = "");

}  // namespace ls::models
