// SDXL text conditioning. References: generative-models sgm/modules/encoders/modules.py
// (GeneralConditioner concatenation order, ConcatTimestepEmbedderND), kohya-ss/sd-scripts
// library/strategy_sdxl.py (_get_hidden_states_sdxl: windows, join, pool from the first window)
// and library/sdxl_train_util.py (get_size_embeddings: original, crop, target).
#include "models/sdxl_conditioner.h"

#include <torch/torch.h>

#include "core/error.h"
#include "nn/functional.h"

namespace ls::models {

namespace {

torch::Device device_of(const ClipTextModel& te) {
  return te->text_model->embeddings->token_embedding->weight.device();
}

/// [B, 77 n] -> [B n, 77], windows of one sample consecutive.
torch::Tensor to_windows(const torch::Tensor& ids, int64_t window, const char* which) {
  LS_CHECK(ids.dim() == 2 && ids.size(1) > 0 && ids.size(1) % window == 0, "sdxl conditioner: ", which,
           " token ids must be [batch, ", window, " * windows], got ", ids.sizes());
  return ids.reshape({-1, window});
}

/// [2] or [B, 2] -> [B, 2] float64
torch::Tensor size_pairs(const torch::Tensor& t, int64_t batch, const char* name) {
  auto pairs = t.dim() == 1 ? t.unsqueeze(0).expand({batch, t.size(0)}) : t;
  LS_CHECK(pairs.dim() == 2 && pairs.size(0) == batch && pairs.size(1) == 2, "size embedding: ", name,
           " must be [2] or [", batch, ", 2], got ", t.sizes());
  return pairs.to(torch::kDouble);
}

}  // namespace

SdxlConditioner::SdxlConditioner(ClipTextModel te1_model, ClipTextModel te2_model)
    : te1(std::move(te1_model)), te2(std::move(te2_model)) {
  LS_CHECK(te2->text_projection.defined(), "sdxl conditioner: the second text encoder has no text_projection; "
           "it must be configured with projection_dim > 0 (OpenCLIP bigG)");
  LS_CHECK(te1->config().max_positions == te2->config().max_positions,
           "sdxl conditioner: both text encoders must use the same window, got ", te1->config().max_positions,
           " and ", te2->config().max_positions);
}

torch::Tensor join_windows(const torch::Tensor& hidden, int64_t window) {
  int64_t n = hidden.size(1) / window;
  LS_CHECK(window > 2 && hidden.size(1) == n * window && n >= 1, "join_windows: sequence ", hidden.size(1),
           " is not a whole number of ", window, "-token windows");
  if (n == 1) return hidden;
  std::vector<torch::Tensor> parts;
  parts.push_back(hidden.slice(1, 0, 1));  // start token of window 0
  for (int64_t w = 0; w < n; ++w) {
    parts.push_back(hidden.slice(1, w * window + 1, (w + 1) * window - 1));  // tokens 1..75
  }
  parts.push_back(hidden.slice(1, n * window - 1, n * window));  // end (or pad) of the last window
  return torch::cat(parts, 1);  // [B, 75 n + 2, C]
}

SdxlTextEmbedding SdxlConditioner::encode(const torch::Tensor& ids_l, const torch::Tensor& ids_g) {
  const int64_t window = te1->config().max_positions;
  LS_CHECK(ids_l.sizes() == ids_g.sizes(), "sdxl conditioner: TE1 ids ", ids_l.sizes(),
           " and TE2 ids ", ids_g.sizes(), " must have the same shape");
  const int64_t batch = ids_l.size(0);
  auto windows_l = to_windows(ids_l, window, "TE1").to(device_of(te1));
  auto windows_g = to_windows(ids_g, window, "TE2").to(device_of(te2));
  const int64_t n = windows_l.size(0) / std::max<int64_t>(batch, 1);

  // TE1's last layer and final norm feed nothing SDXL uses: skip them.
  auto out_l = te1->forward(windows_l, /*penultimate_only=*/true);
  auto out_g = te2->forward(windows_g);

  SdxlTextEmbedding e;
  e.hidden_l = join_windows(out_l.penultimate.reshape({batch, n * window, -1}), window);  // [B, L, 768]
  e.hidden_g = join_windows(out_g.penultimate.reshape({batch, n * window, -1}), window);  // [B, L, 1280]
  e.pooled_g = out_g.pooled.reshape({batch, n, -1}).select(1, 0);                        // [B, 1280]
  e.context = torch::cat({e.hidden_l, e.hidden_g.to(e.hidden_l.device(), e.hidden_l.scalar_type())}, -1);
  return e;
}

torch::Tensor size_embedding(const torch::Tensor& pooled, const torch::Tensor& original_hw,
                             const torch::Tensor& crop_tl, const torch::Tensor& target_hw, int64_t dim) {
  LS_CHECK(pooled.dim() == 2, "size embedding: pooled must be [batch, P], got ", pooled.sizes());
  LS_CHECK(dim > 0, "size embedding: dim must be positive, got ", dim);
  const int64_t batch = pooled.size(0);
  // SGM embeds each [B, 2] key as flatten -> [2B] -> embed -> [B, 2 dim]; keys in conditioner order.
  auto values = torch::cat({size_pairs(original_hw, batch, "original_hw"), size_pairs(crop_tl, batch, "crop_tl"),
                            size_pairs(target_hw, batch, "target_hw")},
                           1)
                    .to(pooled.device());                                      // [B, 6]
  auto emb = ls::nn::timestep_embedding(values.flatten(), dim).reshape({batch, 6 * dim});  // [B, 6 dim] float32
  return torch::cat({pooled, emb.to(pooled.scalar_type())}, 1);               // [B, P + 6 dim]
}

}  // namespace ls::models
