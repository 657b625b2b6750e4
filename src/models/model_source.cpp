// Model sources; see model_source.h.
#include "models/model_source.h"

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/checkpoint_kind.h"
#include "models/diffusers_folder.h"
#include "models/vae_file.h"

namespace fs = std::filesystem;

namespace ls::models {

namespace {

constexpr const char* kBpeVocabName = "bpe_simple_vocab_16e6.txt.gz";

bool source_is_folder(const std::string& path) {
  LS_CHECK(!path.empty(), "no model given; pass an SDXL .safetensors checkpoint or a diffusers folder");
  LS_CHECK(fs::exists(path), path, ": model not found; pass an SDXL .safetensors checkpoint or a diffusers folder");
  return fs::is_directory(path);
}

bool tokenizer_folder(const fs::path& dir) {
  return fs::is_regular_file(dir / "vocab.json") && fs::is_regular_file(dir / "merges.txt");
}

}  // namespace

SdxlModel load_sdxl_model(const ModelFiles& files, Components parts, c10::Device device, c10::ScalarType dtype) {
  const bool separate_vae = !files.vae.empty() && parts.vae;
  Components base = parts;
  if (separate_vae) base.vae = false;
  SdxlModel model = load_sdxl_checkpoint(files.model, files.config, base, device, dtype);
  if (separate_vae) {
    VaeConfig loaded;
    model.vae = load_vae_file(files.vae, model.config, device, dtype, loaded);
    model.config.vae = loaded;
  }
  return model;
}

SdxlConfig model_config(const ModelFiles& files) {
  SdxlConfig config;
  if (source_is_folder(files.model)) {
    config = files.config.empty() ? diffusers_folder_config(files.model) : load_config_file(files.config);
    if (!files.config.empty()) require_sdxl_pipeline(files.model);
  } else {
    const io::SafetensorsReader reader(files.model);
    require_sdxl_base(reader.tensors(), files.model);
    config = resolve_config(reader, files.config);
  }
  if (!files.vae.empty()) {
    VaeConfig vae = inspect_vae_file(files.vae).config;
    vae.scale_factor = config.vae.scale_factor;
    config.vae = vae;
  }
  return config;
}

std::string model_part_fingerprint(const ModelFiles& files, ModelPart part) {
  if (part == ModelPart::kVae && !files.vae.empty()) return vae_file_fingerprint(files.vae);
  if (source_is_folder(files.model)) {
    switch (part) {
      case ModelPart::kUnet: return diffusers_part_fingerprint(files.model, kDiffusersUnet);
      case ModelPart::kVae: return diffusers_part_fingerprint(files.model, kDiffusersVae);
      case ModelPart::kTextEncoders:
        return diffusers_part_fingerprint(files.model, kDiffusersTe1) + diffusers_part_fingerprint(files.model, kDiffusersTe2);
    }
  }
  const io::SafetensorsReader reader(files.model);
  switch (part) {
    case ModelPart::kUnet: return part_fingerprint(reader, kUnetPrefix);
    case ModelPart::kVae: return part_fingerprint(reader, kVaePrefix);
    case ModelPart::kTextEncoders: return part_fingerprint(reader, kTe1Prefix) + part_fingerprint(reader, kTe2Prefix);
  }
  return "";
}

std::string find_tokenizer(const std::string& given, const std::string& model_path) {
  if (!given.empty()) return given;
  if (!model_path.empty() && fs::exists(model_path)) {
    const fs::path model(model_path);
    const fs::path dir = fs::is_directory(model) ? model : model.parent_path().empty() ? fs::path(".") : model.parent_path();
    if (tokenizer_folder(dir / "tokenizer")) return (dir / "tokenizer").string();
    if (!fs::is_directory(model) && fs::is_regular_file(dir / kBpeVocabName)) return (dir / kBpeVocabName).string();
  }
  const char* env = std::getenv(kTokenizerEnv);
  if (env && *env) {
    LS_CHECK(fs::exists(env), kTokenizerEnv, "=", env, ": not found; point it at ", kBpeVocabName,
             " or a tokenizer folder (vocab.json + merges.txt)");
    return env;
  }
  return "";
}

std::string require_tokenizer(const std::string& given, const std::string& model_path, const std::string& what) {
  std::string found = find_tokenizer(given, model_path);
  LS_CHECK(!found.empty(), what, ": no CLIP vocabulary; pass --tokenizer PATH (", kBpeVocabName,
           " or a folder with vocab.json and merges.txt), put a tokenizer/ folder or ", kBpeVocabName,
           " beside the model, or set ", kTokenizerEnv);
  return found;
}

}  // namespace ls::models
