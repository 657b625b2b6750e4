// What a .safetensors file is, told from its key names and a few shapes, so that a wrong file
// gets an error that says what it is (SD 1.x, SD 2.x, SDXL refiner, a LoRA...) instead of a key list.
#pragma once

#include <string>
#include <vector>

#include "io/safetensors_header.h"

namespace ls::models {

enum class CheckpointKind {
  kSdxlBase,
  kSdxlRefiner,
  kSd1,
  kSd2,
  kLora,
  kDiffusersUnet,  // a diffusers UNet file (down_blocks.*), not a single-file checkpoint
  kUnknown,
};

/// Human name of a kind, e.g. "an SD 1.x checkpoint".
std::string describe(CheckpointKind kind);

/// Looks only at names and shapes (no tensor data is read).
CheckpointKind detect_checkpoint_kind(const std::vector<io::TensorInfo>& tensors);

/// Fails with one line saying what the file is and what to use instead, unless it is an SDXL base.
void require_sdxl_base(const std::vector<io::TensorInfo>& tensors, const std::string& label);

}  // namespace ls::models
