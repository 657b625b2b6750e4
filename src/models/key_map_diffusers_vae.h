// diffusers AutoencoderKL names <-> ldm/SGM AutoencoderKL names (lorastudio's AutoencoderKL) for a
// VAE of any widths and depths: encoder.down_blocks.L.resnets.J / downsamplers, decoder.up_blocks
// (deepest level first), mid_block.resnets / attentions.0 (to_q/k/v/to_out.0 Linear weights are
// ldm's 1x1 convs q/k/v/proj_out), conv_norm_out <-> encoder.down.L.block.J / downsample,
// decoder.up.L, mid.block_1/attn_1/block_2, norm_out. Reference: diffusers 0.42
// loaders/single_file_utils.py (convert_ldm_vae_checkpoint); its output over SDXL's VAE keys is
// tests/fixtures/diffusers/keys/sdxl_vae_sgm_to_diffusers.txt.
#pragma once

#include "models/key_map_diffusers.h"
#include "models/vae.h"

namespace ls::models {

/// The table for this architecture. Reads diffusers' pre-0.14 attention names too
/// (query/key/value/proj_attn), never writes them.
KeyMap diffusers_vae_map(const VaeConfig& config);

}  // namespace ls::models
