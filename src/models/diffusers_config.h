// The config.json files of a diffusers SDXL folder <-> lorastudio's part configs: unet/ and vae/
// (diffusers UNet2DConditionModel, AutoencoderKL) and text_encoder/, text_encoder_2/
// (transformers CLIPTextModel, CLIPTextModelWithProjection). Reading checks every setting that
// changes the network lorastudio would build and refuses others by name. References: diffusers
// 0.42 models/unets/unet_2d_condition.py, models/autoencoders/autoencoder_kl.py; transformers 5.23
// models/clip/configuration_clip.py; SDXL base's own config files.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "models/clip_text.h"
#include "models/sdxl_unet.h"
#include "models/vae.h"

namespace ls::models {

/// The parsed file; an ls::Error naming the path when it is missing or not JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

/// label: the file, for errors ("model/unet/config.json: ...").
SdxlUnetConfig unet_config_from_diffusers(const nlohmann::json& j, const std::string& label);
VaeConfig vae_config_from_diffusers(const nlohmann::json& j, const std::string& label);
/// with_projection: text_encoder_2 (CLIPTextModelWithProjection: projection_dim counts).
ClipTextConfig clip_config_from_transformers(const nlohmann::json& j, bool with_projection, const std::string& label);

/// What save_pretrained writes for these parts (the fields the readers above read, plus the
/// class names and SDXL's values of the rest), so diffusers and transformers load the folder.
nlohmann::json unet_config_to_diffusers(const SdxlUnetConfig& c);
nlohmann::json vae_config_to_diffusers(const VaeConfig& c);
nlohmann::json clip_config_to_transformers(const ClipTextConfig& c, bool with_projection);

}  // namespace ls::models
