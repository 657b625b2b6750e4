#include "caption/florence2_projector.h"

#include <cmath>

#include <torch/torch.h>

#include "caption/tagger_net.h"
#include "core/error.h"

namespace ls::caption {

torch::Tensor florence2_temporal_table(int64_t rows, int64_t dim) {
  const int64_t half = dim / 2;
  // As the reference: exp(arange(half).float() * -(ln(10000) / half)), positions times
  // frequencies in float32, sin into the even columns and cos into the odd ones.
  auto freqs = torch::exp(torch::arange(half, torch::kLong).to(torch::kFloat) * -(std::log(10000.0) / half));
  auto angles = torch::arange(rows, torch::kFloat).unsqueeze(1) * freqs.unsqueeze(0);  // [rows, half]
  auto table = torch::empty({rows, dim});
  table.slice(1, 0, dim, 2).copy_(torch::sin(angles));
  table.slice(1, 1, dim, 2).copy_(torch::cos(angles));
  return table;
}

Florence2ProjectorImpl::Florence2ProjectorImpl(const Florence2VisionConfig& c) {
  const int64_t dim = c.out_dim();
  LS_CHECK(dim % 2 == 0, "Florence-2 projector: the last stage's width must be even (sin/cos pairs), got ", dim);
  image_projection = register_module("image_projection", nn::Linear(dim, c.projection_dim, false));
  image_proj_norm = register_module("image_proj_norm", nn::LayerNorm(c.projection_dim, 1e-5));
  auto position = register_module("image_position_embed", std::make_shared<torch::nn::Module>());
  auto rows = position->register_module("row_embeddings", std::make_shared<torch::nn::Module>());
  auto columns = position->register_module("column_embeddings", std::make_shared<torch::nn::Module>());
  row_embeddings = learned(*rows, "weight", {c.max_position_embeddings, dim / 2});
  column_embeddings = learned(*columns, "weight", {c.max_position_embeddings, dim - dim / 2});
  auto temporal = register_module("visual_temporal_embed", std::make_shared<torch::nn::Module>());
  temporal_table = temporal->register_buffer("pos_idx_to_embed", florence2_temporal_table(c.max_temporal_embeddings, dim));
}

torch::Tensor Florence2ProjectorImpl::forward(const torch::Tensor& features) {
  const int64_t B = features.size(0), C = features.size(1), h = features.size(2), w = features.size(3);
  const int64_t max_pos = row_embeddings.size(0);
  LS_CHECK(C == row_embeddings.size(1) + column_embeddings.size(1), "Florence-2 projector: features have ", C,
           " channels, the projector expects ", row_embeddings.size(1) + column_embeddings.size(1));
  LS_CHECK(h <= max_pos && w <= max_pos, "Florence-2 projector: a ", h, "x", w,
           " feature grid exceeds the learned position table's ", max_pos, "x", max_pos);
  auto x = features.permute({0, 2, 3, 1});  // [B, h, w, C], contiguous for Florence2Vision's output
  auto position = torch::cat({column_embeddings.slice(0, 0, w).unsqueeze(0).expand({h, w, -1}),
                              row_embeddings.slice(0, 0, h).unsqueeze(1).expand({h, w, -1})},
                             -1);  // [h, w, C]
  // The reference's order of the sums, (features + position) + temporal; one frame: row 0.
  auto tokens = ((x + position) + temporal_table[0]).reshape({B, h * w, C});  // [B, h*w, C]
  auto all = torch::cat({tokens.mean(1, /*keepdim=*/true), tokens}, 1);          // [B, 1 + h*w, C]
  return image_proj_norm(image_projection(all));                                  // [B, 1 + h*w, proj]
}

}  // namespace ls::caption
