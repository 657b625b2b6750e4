// CLIP text transformer for both SDXL text encoders: TE1 (OpenAI ViT-L/14, quick_gelu) and TE2
// (OpenCLIP ViT-bigG/14, exact gelu, text_projection), chosen by config. Hugging Face module names,
// so named_parameters() == transformers' CLIPTextModel(WithProjection) keys.
// Matches huggingface/transformers src/transformers/models/clip/modeling_clip.py (CLIPTextTransformer)
// and mlfoundations/open_clip src/open_clip/model.py (encode_text: pooled row @ text_projection).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include "nn/layers.h"

namespace ls::models {

struct ClipTextConfig {
  int64_t vocab_size = 49408;
  int64_t max_positions = 77;
  int64_t width = 768;
  int64_t layers = 12;
  int64_t heads = 12;
  int64_t mlp_width = 3072;
  std::string activation = "quick_gelu";  // "quick_gelu" (TE1) or "gelu" (exact erf, TE2)
  int64_t projection_dim = 0;             // 0: no text_projection / logit_scale (TE1); TE2: 1280
  double layer_norm_eps = 1e-5;

  static ClipTextConfig sdxl_te1();  // the defaults
  static ClipTextConfig sdxl_te2();  // 32 layers, width 1280, 20 heads, mlp 5120, gelu, projection 1280
  static ClipTextConfig tiny_te1();  // 3 layers, width 32, 2 heads, quick_gelu
  static ClipTextConfig tiny_te2();  // 3 layers, width 32, 4 heads, gelu, projection 32
  /// Throws ls::Error naming the bad field.
  void validate() const;
};
void to_json(nlohmann::json& j, const ClipTextConfig& c);
void from_json(const nlohmann::json& j, ClipTextConfig& c);

/// Causal multi-head self-attention (CLIPAttention): q/k/v/out_proj, scale head_dim^-0.5.
class ClipAttentionImpl : public torch::nn::Module {
 public:
  ClipAttentionImpl(int64_t width, int64_t heads);
  /// x [B, N, C] -> [B, N, C]; position i attends to j <= i.
  torch::Tensor forward(const torch::Tensor& x);

  ls::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(ClipAttention);

/// fc1 -> activation -> fc2 (CLIPMLP).
class ClipMlpImpl : public torch::nn::Module {
 public:
  ClipMlpImpl(int64_t width, int64_t mlp_width, const std::string& activation);
  /// x [B, N, C] -> [B, N, C]
  torch::Tensor forward(const torch::Tensor& x);

  ls::nn::Linear fc1{nullptr}, fc2{nullptr};

 private:
  bool quick_gelu_;
};
TORCH_MODULE(ClipMlp);

/// Pre-norm block (CLIPEncoderLayer): x + attn(layer_norm1(x)), then x + mlp(layer_norm2(x)).
class ClipEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit ClipEncoderLayerImpl(const ClipTextConfig& config);
  /// x [B, N, C] -> [B, N, C]
  torch::Tensor forward(const torch::Tensor& x);
  bool gradient_checkpointing = false;  // recompute in backward (kohya checkpoints each CLIP layer)

  ClipAttention self_attn{nullptr};
  ls::nn::LayerNorm layer_norm1{nullptr};
  ClipMlp mlp{nullptr};
  ls::nn::LayerNorm layer_norm2{nullptr};

 private:
  torch::Tensor body(const torch::Tensor& x);
};
TORCH_MODULE(ClipEncoderLayer);

/// Token + position embeddings (CLIPTextEmbeddings).
class ClipTextEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit ClipTextEmbeddingsImpl(const ClipTextConfig& config);
  /// ids [B, N] integer, N <= max_positions -> [B, N, C] in the parameters' dtype
  torch::Tensor forward(const torch::Tensor& ids);

  torch::nn::Embedding token_embedding{nullptr};     // [vocab, C]
  torch::nn::Embedding position_embedding{nullptr};  // [max_positions, C]
};
TORCH_MODULE(ClipTextEmbeddings);

/// The layer stack (CLIPEncoder); children registered as "layers.N".
class ClipEncoderImpl : public torch::nn::Module {
 public:
  explicit ClipEncoderImpl(const ClipTextConfig& config);

  torch::nn::ModuleList layers{nullptr};
  std::vector<ClipEncoderLayer> layer_list;  // typed views of `layers`
};
TORCH_MODULE(ClipEncoder);

/// "text_model": embeddings, encoder, final_layer_norm (CLIPTextTransformer).
class ClipTextTransformerImpl : public torch::nn::Module {
 public:
  explicit ClipTextTransformerImpl(const ClipTextConfig& config);

  ClipTextEmbeddings embeddings{nullptr};
  ClipEncoder encoder{nullptr};
  ls::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(ClipTextTransformer);

struct ClipTextOutput {
  torch::Tensor penultimate;  // [B, N, C] hidden state after layers-1 layers, no final norm
  torch::Tensor last;         // [B, N, C] after all layers + final_layer_norm (undefined if skipped)
  torch::Tensor pooled;       // [B, P or C] `last` at the first max-id position (@ text_projection)
};

class ClipTextModelImpl : public torch::nn::Module {
 public:
  explicit ClipTextModelImpl(const ClipTextConfig& config);
  /// ids [B, N] int64 (N <= max_positions), computed in the parameters' dtype.
  /// penultimate_only: stop after layers-1 layers (SDXL's TE1 needs nothing else); `last` and
  /// `pooled` stay undefined. Gradients are unchanged: the skipped layer would not reach the loss.
  ClipTextOutput forward(const torch::Tensor& ids, bool penultimate_only = false);

  /// Row index of the pooled token per sample: the first position holding the row's largest id,
  /// i.e. the first end token 49407 (torch's argmax(ids) tie rule, made explicit). ids [B, N] -> [B]
  static torch::Tensor pool_index(const torch::Tensor& ids);

  const ClipTextConfig& config() const { return config_; }
  /// Recompute every encoder layer in backward (for training the text encoder with LoRA).
  void set_gradient_checkpointing(bool enabled);

  ClipTextTransformer text_model{nullptr};
  torch::Tensor text_projection;  // [C, P], applied as x @ P (open_clip / SGM), TE2 only
  torch::Tensor logit_scale;      // 0-dim, unused; kept so a checkpoint round-trips (TE2 only)

 private:
  ClipTextConfig config_;
};
TORCH_MODULE(ClipTextModel);

}  // namespace ls::models
