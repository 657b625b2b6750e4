// The whole SDXL model as lorastudio holds it: UNet, both text encoders and the VAE, with one
// config that describes all four (full-size SDXL by default, tiny() for tests and the quickstart).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "models/clip_text.h"
#include "models/sdxl_unet.h"
#include "models/vae.h"

namespace ls::models {

struct SdxlConfig {
  SdxlUnetConfig unet;
  ClipTextConfig te1 = ClipTextConfig::sdxl_te1();
  ClipTextConfig te2 = ClipTextConfig::sdxl_te2();
  VaeConfig vae;

  static SdxlConfig tiny();
  /// The parts must fit together: context = te1.width + te2.width, vector = pooled + 6 x 256.
  void validate(const std::string& label) const;
};
void to_json(nlohmann::json& j, const SdxlConfig& c);
void from_json(const nlohmann::json& j, SdxlConfig& c);
/// Reads a config JSON file ({"unet": {...}, "te1": {...}, "te2": {...}, "vae": {...}}; absent parts
/// keep SDXL's sizes) and validates it.
SdxlConfig load_config_file(const std::string& path);

/// Which parts of a checkpoint a command needs.
struct Components {
  bool unet = false, text = false, vae = false;
  static Components all() { return {true, true, true}; }
};

/// The four networks; a part that was not asked for stays empty (nullptr).
struct SdxlModel {
  SdxlConfig config;
  SdxlUnet unet{nullptr};
  ClipTextModel te1{nullptr};
  ClipTextModel te2{nullptr};
  AutoencoderKL vae{nullptr};

  /// Builds the asked-for parts with fresh (random or uninitialised, see SkipInitGuard) weights.
  static SdxlModel create(const SdxlConfig& config, Components parts);
  /// Moves every present part to device and dtype.
  void to(c10::Device device, c10::ScalarType dtype);
};

}  // namespace ls::models
