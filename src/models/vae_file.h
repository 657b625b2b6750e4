// A separate VAE for an SDXL model (kohya's `vae`, A1111's VAE setting): sdxl_vae.safetensors-style
// files in ldm/SGM names (encoder.conv_in.weight, decoder.up.0.block.0.norm1.weight, quant_conv...,
// bare or under first_stage_model. / vae.), diffusers AutoencoderKL weights
// (diffusion_pytorch_model.safetensors with or without its config.json beside it, e.g.
// madebyollin/sdxl-vae-fp16-fix), a diffusers VAE folder, or a diffusers pipeline folder (its vae/).
// The architecture comes from config.json when there is one, else from the tensor shapes; it must
// fit the model's UNet. The model's latent scale factor is kept (kohya uses SDXL's whatever VAE).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "models/sdxl_model.h"

namespace ls::models {

enum class VaeNaming { kLdm, kDiffusers };

struct VaeFileInfo {
  std::vector<std::filesystem::path> files;  // one, or a diffusers part's shards
  VaeNaming naming = VaeNaming::kLdm;
  std::string prefix;  // before every VAE name in the files ("", "first_stage_model.", "vae.")
  VaeConfig config;    // scale_factor: config.json's, else SDXL's
};

/// What the path holds; fails (one line naming the path) for files that hold no VAE (a LoRA, a
/// UNet, a non-VAE diffusers folder), or whose shapes describe no AutoencoderKL.
VaeFileInfo inspect_vae_file(const std::string& path);

/// Loads the VAE for `model` (its UNet's latent channels and the VAE's downscale must agree with
/// the file, else an error naming the path and both numbers); missing, unexpected and
/// mis-shaped tensors are listed in one error. The returned config keeps model's scale_factor.
AutoencoderKL load_vae_file(const std::string& path, const SdxlConfig& model, c10::Device device, c10::ScalarType dtype,
                            VaeConfig& loaded);

/// SHA-256 of the VAE in single-file names and shapes (see mapped_tensors.h): equal to the
/// checkpoint's part_fingerprint(reader, kVaePrefix) when it holds the same weights.
std::string vae_file_fingerprint(const std::string& path);

}  // namespace ls::models
