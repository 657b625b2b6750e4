// Florence-2's multi-modal projector: DaViT features -> the language model's image tokens, as
// transformers 5.23 ports it (transformers/models/florence2/modeling_florence2.py:
// Florence2MultiModalProjector, Florence2VisionLearnedAbsolutePositionEmbedding2D,
// Florence2VisionPositionalEmbeddingCosine1D), with its names under "model.multi_modal_projector.".
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "caption/florence2_config.h"
#include "nn/layers.h"

namespace ls::caption {

/// The sinusoid table of Florence2VisionPositionalEmbeddingCosine1D: [rows, dim], row t holds
/// sin(t f_i) at column 2i and cos(t f_i) at 2i + 1, f_i = exp(-i ln(10000) / (dim / 2)), float32.
torch::Tensor florence2_temporal_table(int64_t rows, int64_t dim);

class Florence2ProjectorImpl : public torch::nn::Module {
 public:
  explicit Florence2ProjectorImpl(const Florence2VisionConfig& config);
  /// features [B, C, h, w] (Florence2Vision's output; any memory format, h, w <=
  /// max_position_embeddings) -> image tokens [B, 1 + h*w, projection_dim]. With p the features
  /// plus the learned 2-D position (channels [0, C - C/2) the column's, the rest the row's) plus
  /// the temporal table's row 0 (one frame), token 0 is the mean of p over the h*w positions
  /// ("spatial_avg_pool") and tokens 1.. are p itself, row-major ("temporal_avg_pool" over one
  /// frame), each projected (no bias) and LayerNorm'ed.
  torch::Tensor forward(const torch::Tensor& features);

  nn::Linear image_projection{nullptr};  // weight [projection_dim, C]
  nn::LayerNorm image_proj_norm{nullptr};
  torch::Tensor row_embeddings;     // image_position_embed.row_embeddings.weight [max_pos, C/2]
  torch::Tensor column_embeddings;  // image_position_embed.column_embeddings.weight [max_pos, C - C/2]
  /// visual_temporal_embed.pos_idx_to_embed [max_temporal, C]: a persistent buffer in the
  /// reference, so the native file stores it; computed here too (florence2_temporal_table).
  torch::Tensor temporal_table;
};
TORCH_MODULE(Florence2Projector);

}  // namespace ls::caption
