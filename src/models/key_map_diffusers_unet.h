// diffusers UNet2DConditionModel names <-> SGM UNetModel names (lorastudio's SdxlUnet) for an
// SDXL-shaped UNet of any widths and depths: down_blocks.L.resnets/attentions/downsamplers,
// mid_block, up_blocks, time_embedding, add_embedding, conv_in / conv_norm_out / conv_out
// <-> input_blocks.N.M, middle_block.M, output_blocks.N.M, time_embed, label_emb, out.
// Reference: diffusers 0.42 loaders/single_file_utils.py (convert_ldm_unet_checkpoint), whose
// output over SDXL's 1680 keys is tests/fixtures/diffusers/keys/sdxl_unet_sgm_to_diffusers.txt.
#pragma once

#include "models/key_map_diffusers.h"
#include "models/sdxl_unet.h"

namespace ls::models {

/// The table for this architecture (the block numbering depends on levels and blocks per level).
KeyMap diffusers_unet_map(const SdxlUnetConfig& config);

}  // namespace ls::models
