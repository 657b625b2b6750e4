// Where an SDXL model comes from, as every command names it: a single-file checkpoint or a
// diffusers folder (the same flag, told apart by what the path is), an optional architecture JSON,
// and an optional separate VAE that replaces the model's (vae_file.h). Loading, the architecture
// alone, cache fingerprints of the parts, and where the CLIP vocabulary is when none is given.
#pragma once

#include <string>

#include "models/sdxl_model.h"

namespace ls::models {

struct ModelFiles {
  std::string model;   // SDXL .safetensors checkpoint or diffusers folder
  std::string config;  // architecture JSON (optional)
  std::string vae;     // separate VAE (optional)
};

/// The asked-for parts; the VAE from files.vae when given (the model's own VAE is then not read).
SdxlModel load_sdxl_model(const ModelFiles& files, Components parts, c10::Device device, c10::ScalarType dtype);

/// The architecture without reading weights (a separate VAE's shapes are read), checked to be
/// SDXL base: for plans and configs before a load.
SdxlConfig model_config(const ModelFiles& files);

enum class ModelPart { kUnet, kTextEncoders, kVae };
/// SHA-256 identity of one part for caches: the separate VAE when given; a VAE gives the same value
/// in every layout that holds the same weights in the same dtype.
std::string model_part_fingerprint(const ModelFiles& files, ModelPart part);

/// The environment variable naming a CLIP vocabulary to use when none is given or found.
inline constexpr const char* kTokenizerEnv = "LORASTUDIO_TOKENIZER";

/// The CLIP vocabulary to use: `given` when not empty; else a diffusers folder's tokenizer/; else
/// beside a single-file model a tokenizer/ folder or bpe_simple_vocab_16e6.txt.gz; else
/// $LORASTUDIO_TOKENIZER. "" when there is none (the caller says what to pass).
std::string find_tokenizer(const std::string& given, const std::string& model_path);
/// find_tokenizer or an error naming `what` (the command) and every place looked at.
std::string require_tokenizer(const std::string& given, const std::string& model_path, const std::string& what);

}  // namespace ls::models
