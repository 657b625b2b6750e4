// ImageRequest <-> GenerationParams; see request_params.h.
#include "a1111/request_params.h"

#include <cstdlib>
#include <filesystem>

#include "core/error.h"

namespace fs = std::filesystem;

namespace ls::a1111 {

std::string user_cache_dir() {
  if (const char* own = std::getenv("LORASTUDIO_CACHE"); own && *own) return own;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return (fs::path(xdg) / "lorastudio").string();
  if (const char* home = std::getenv("HOME"); home && *home) return (fs::path(home) / ".cache" / "lorastudio").string();
  return ".lorastudio-cache";
}

GenerationParams generation_params(const sample::ImageRequest& r, const std::string& checkpoint, FileHashCache& hashes,
                                   bool paths, const std::string& vae) {
  GenerationParams p;
  static_cast<sample::ImageSettings&>(p) = r;  // the request vocabulary is the same struct on both sides
  if (!checkpoint.empty()) {
    p.model = fs::path(checkpoint).stem().string();
    p.model_hash = model_hash(checkpoint, hashes);
    if (paths) p.model_path = fs::absolute(checkpoint).lexically_normal().string();
  }
  if (!vae.empty()) {  // A1111 names the loaded VAE file with its extension (os.path.basename)
    p.extra[kVaeKey] = fs::path(vae).lexically_normal().filename().string();
    if (p.extra[kVaeKey].empty()) p.extra[kVaeKey] = fs::path(vae).lexically_normal().parent_path().filename().string();
    p.extra[kVaeHashKey] = vae_hash(vae, hashes);
    if (paths) p.extra[kVaePathKey] = fs::absolute(vae).lexically_normal().string();
  }
  for (const auto& l : r.loras) {
    InfotextLora lora;
    lora.name = fs::path(l.path).stem().string();
    if (paths) lora.path = fs::absolute(l.path).lexically_normal().string();
    lora.hash = lora_hash(l.path, hashes);
    lora.strength = l.strength;
    p.loras.push_back(lora);
  }
  return p;
}

void add_prediction(GenerationParams& p, const models::ModelPrediction& prediction) {
  if (prediction.v) p.extra[kPredictionKey] = "v";
  if (prediction.zero_terminal_snr) p.extra[kNoiseScheduleKey] = "Zero Terminal SNR";
}

models::ModelPrediction prediction_of(const GenerationParams& p) {
  models::ModelPrediction out;
  const auto v = p.extra.find(kPredictionKey);
  out.v = v != p.extra.end() && v->second == "v";
  const auto schedule = p.extra.find(kNoiseScheduleKey);
  out.zero_terminal_snr = schedule != p.extra.end() && schedule->second == "Zero Terminal SNR";
  return out;
}

sample::ImageRequest request_from_params(const GenerationParams& p, const std::vector<std::string>& lora_dirs,
                                 const std::string& name) {
  sample::ImageRequest r;
  static_cast<sample::ImageSettings&>(r) = p;
  for (const auto& l : p.loras) {
    LS_CHECK(!l.unet_strength || *l.unet_strength == l.strength, name, ": LoRA ", l.name,
             " has separate text-encoder and UNet strengths; lorastudio applies one strength per LoRA");
    std::string path;
    if (!l.path.empty() && fs::is_regular_file(l.path)) {
      path = l.path;
    } else {
      for (const auto& dir : lora_dirs) {
        const fs::path candidate = fs::path(dir) / (l.name + ".safetensors");
        if (fs::is_regular_file(candidate)) {
          path = candidate.string();
          break;
        }
      }
    }
    LS_CHECK(!path.empty(), name, ": LoRA '", l.name, "' not found", l.path.empty() ? "" : " at " + l.path,
             "; pass --lora-dir DIR (the folder holding ", l.name, ".safetensors)");
    r.loras.push_back({path, l.strength});
  }
  return r;
}

}  // namespace ls::a1111
