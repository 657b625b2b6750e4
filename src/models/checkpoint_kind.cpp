#include "models/checkpoint_kind.h"

#include <unordered_map>

#include "core/error.h"

namespace ls::models {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Input width of the first cross-attention key projection = the UNet's context dim:
// 768 (SD 1.x), 1024 (SD 2.x), 1280 (SDXL refiner), 2048 (SDXL base).
int64_t unet_context_dim(const std::unordered_map<std::string, const io::TensorInfo*>& by_name) {
  for (const auto& [name, info] : by_name) {
    if (starts_with(name, "model.diffusion_model.") && contains(name, ".attn2.to_k.weight") &&
        info->shape.size() == 2) {
      return info->shape[1];
    }
  }
  return -1;
}

}  // namespace

std::string describe(CheckpointKind kind) {
  switch (kind) {
    case CheckpointKind::kSdxlBase: return "an SDXL base checkpoint";
    case CheckpointKind::kSdxlRefiner: return "an SDXL refiner checkpoint";
    case CheckpointKind::kSd1: return "an SD 1.x checkpoint";
    case CheckpointKind::kSd2: return "an SD 2.x checkpoint";
    case CheckpointKind::kLora: return "a LoRA, not a base model";
    case CheckpointKind::kDiffusersUnet: return "a diffusers-format UNet file, not an SDXL single-file checkpoint";
    case CheckpointKind::kUnknown: break;
  }
  return "not an SDXL checkpoint (no model.diffusion_model.* SDXL keys)";
}

CheckpointKind detect_checkpoint_kind(const std::vector<io::TensorInfo>& tensors) {
  std::unordered_map<std::string, const io::TensorInfo*> by_name;
  bool lora = false, diffusers = false, sgm_te2 = false, ldm_clip = false, ldm_open_clip = false;
  for (const auto& t : tensors) {
    by_name.emplace(t.name, &t);
    const std::string& n = t.name;
    if (starts_with(n, "lora_unet_") || starts_with(n, "lora_te") || contains(n, ".lora_down.") ||
        contains(n, ".lora_A.") || contains(n, "lora.down.")) {
      lora = true;
    }
    if (starts_with(n, "down_blocks.") || starts_with(n, "unet.down_blocks.")) diffusers = true;
    if (starts_with(n, "conditioner.embedders.1.model.")) sgm_te2 = true;
    if (starts_with(n, "cond_stage_model.transformer.")) ldm_clip = true;
    if (starts_with(n, "cond_stage_model.model.")) ldm_open_clip = true;
  }
  if (lora) return CheckpointKind::kLora;
  int64_t context = unet_context_dim(by_name);
  if (context == 2048 || sgm_te2) return CheckpointKind::kSdxlBase;
  if (context == 1280) return CheckpointKind::kSdxlRefiner;
  if (context == 768 || ldm_clip) return CheckpointKind::kSd1;
  if (context == 1024 || ldm_open_clip) return CheckpointKind::kSd2;
  if (diffusers) return CheckpointKind::kDiffusersUnet;
  // Tiny test models have other widths: any SGM-layout file with a label embedding is SDXL-shaped.
  if (by_name.count("model.diffusion_model.label_emb.0.0.weight")) return CheckpointKind::kSdxlBase;
  return CheckpointKind::kUnknown;
}

void require_sdxl_base(const std::vector<io::TensorInfo>& tensors, const std::string& label) {
  CheckpointKind kind = detect_checkpoint_kind(tensors);
  if (kind == CheckpointKind::kSdxlBase) return;
  std::string hint = kind == CheckpointKind::kLora
                         ? "pass it with --lora, and give an SDXL base checkpoint as the model"
                         : "lorastudio trains on SDXL 1.0 base-architecture checkpoints; pick one of those";
  LS_FAIL(label, ": this is ", describe(kind), "; ", hint);
}

}  // namespace ls::models
