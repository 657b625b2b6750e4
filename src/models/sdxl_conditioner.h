// SDXL text conditioning: context = TE1 penultimate ⊕ TE2 penultimate ([B, L, 2048]), pooled TE2
// output, and the 2816-d vector y = pooled ⊕ size embeddings. Matches Stability-AI/generative-models
// sgm/modules/encoders/modules.py (GeneralConditioner, FrozenCLIPEmbedder layer_idx 11,
// FrozenOpenCLIPEmbedder2 "penultimate", ConcatTimestepEmbedderND) and, for prompts longer than one
// window, kohya-ss/sd-scripts library/strategy_sdxl.py (_get_hidden_states_sdxl).
#pragma once

#include <ATen/core/Tensor.h>

#include "models/clip_text.h"

namespace ls::models {

struct SdxlTextEmbedding {
  torch::Tensor hidden_l;  // [B, L, 768]  TE1 after 11 of 12 layers (no final norm)
  torch::Tensor hidden_g;  // [B, L, 1280] TE2 after 31 of 32 layers (no final norm)
  torch::Tensor pooled_g;  // [B, 1280]    TE2 ln_final(last)[first end token] @ text_projection
  torch::Tensor context;   // [B, L, 2048] cat(hidden_l, hidden_g, -1)
};

class SdxlConditioner {
 public:
  /// The two encoders are shared, not copied (LoRA adapters attached to them stay in effect).
  SdxlConditioner(ClipTextModel te1, ClipTextModel te2);

  /// ids_l (TE1, padded with 49407) and ids_g (TE2, padded with 0): [B, 77 n], n >= 1 windows of
  /// start + 75 + end|pad each. Each window is encoded on its own; as kohya does, the windows'
  /// states are joined as  start of window 0, tokens 1..75 of every window, last token of window
  /// n-1, so L = 75 n + 2 (77 for one window). pooled_g comes from the first window.
  SdxlTextEmbedding encode(const torch::Tensor& ids_l, const torch::Tensor& ids_g);

  ClipTextModel te1, te2;
};

/// kohya's join of per-window states: [B, 77 n, C] -> [B, 75 n + 2, C] (identity for n = 1).
torch::Tensor join_windows(const torch::Tensor& hidden, int64_t window);

/// y = [pooled, emb(orig h), emb(orig w), emb(crop top), emb(crop left), emb(target h), emb(target w)]
/// with emb = ls::nn::timestep_embedding(value, dim) (cos first). pooled [B, P]; each size [B, 2] per
/// sample or [2] for the whole batch, any numeric dtype -> [B, P + 6 dim] in pooled's dtype and device.
torch::Tensor size_embedding(const torch::Tensor& pooled, const torch::Tensor& original_hw,
                             const torch::Tensor& crop_tl, const torch::Tensor& target_hw, int64_t dim = 256);

}  // namespace ls::models
