// open_clip text-encoder names <-> the Hugging Face names ClipTextModel uses (SDXL's TE2), as
// tables, both directions; attn.in_proj_weight/bias ([q;k;v] stacked rows) <-> q/k/v_proj.
// Matches mlfoundations/open_clip src/open_clip/transformer.py (ResidualAttentionBlock, nn.MultiheadAttention)
// and kohya-ss/sd-scripts library/sdxl_model_util.py (convert_sdxl_text_encoder_2_checkpoint).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace ls::models {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/// One open_clip TE2 tensor (name without the checkpoint prefix "conditioner.embedders.1.model.")
/// -> its HF-named tensor(s). in_proj_weight [3C, C] / in_proj_bias [3C] become q, k, v rows in
/// that order, as narrow() VIEWS of `value` (no copy: the caller copies into its parameters).
/// Other tensors are returned as is. Unknown names or a non-divisible in_proj throw ls::Error.
NamedTensors open_clip_to_hf(const std::string& key, const at::Tensor& value);

/// The inverse over one whole HF-named state dict (ClipTextModel's named_parameters()): q/k/v of
/// each layer are fused into in_proj (new tensors, torch::cat); the rest keep their storage.
/// Output order follows the input (in_proj where the first of its q/k/v was). Throws ls::Error for
/// unknown names and for a layer missing one of q/k/v or with mismatched shapes.
NamedTensors hf_to_open_clip(const NamedTensors& hf_state);

/// The open_clip key (without prefix) holding an HF key, e.g. "text_model.encoder.layers.3.self_attn.k_proj.weight"
/// -> "transformer.resblocks.3.attn.in_proj_weight". Throws ls::Error for unknown names.
std::string open_clip_key_for(const std::string& hf_key);

/// The HF keys an open_clip key (without prefix) becomes: three for in_proj, one otherwise, none
/// when the name is not an open_clip text-encoder tensor (lets a loader list unexpected keys).
std::vector<std::string> hf_keys_for(const std::string& open_clip_key);

}  // namespace ls::models
