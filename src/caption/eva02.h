// timm's Eva as EVA02 (timm/models/eva.py, layers/pos_embed_sincos.py, layers/mlp.py SwiGLU), the
// base of wd-eva02-large-tagger-v3: class token + learned absolute positions, 2-D rotary position
// embedding on q and k of the patch tokens (RotaryEmbeddingCat: axial, interleaved pairs,
// inverse-frequency bands, positions rescaled to ref_feat_shape), separate q/k/v projections
// (no k bias), SwiGLU MLP with a LayerNorm on the hidden features (sub-LN), average pooling and
// fc_norm. LayerNorm eps 1e-6 throughout.
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include "caption/tagger_net.h"

namespace ls::caption {

/// RotaryEmbeddingCat's table for an h x w grid: [h*w, 2*head_dim] = [sin | cos], float32.
torch::Tensor eva_rope_table(int64_t grid, int64_t head_dim, std::array<int64_t, 2> ref_feat_shape);

class EvaAttentionImpl : public torch::nn::Module {
 public:
  EvaAttentionImpl(const TaggerConfig& c);
  /// x [B, N, C], rope [N - prefix, 2*D] or undefined -> [B, N, C]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& rope);

  nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr};  // qkv_fused = false
  nn::Linear qkv{nullptr};                                        // qkv_fused = true
  torch::Tensor q_bias, v_bias;                                   // with the fused qkv
  nn::Linear proj{nullptr};

 private:
  int64_t heads_, prefix_;
};
TORCH_MODULE(EvaAttention);

/// timm's SwiGLU with norm: fc2(norm(silu(fc1_g(x)) * fc1_x(x))).
class SwiGluImpl : public torch::nn::Module {
 public:
  SwiGluImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);

  nn::Linear fc1_g{nullptr}, fc1_x{nullptr}, fc2{nullptr};
  nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(SwiGlu);

class EvaBlockImpl : public torch::nn::Module {
 public:
  explicit EvaBlockImpl(const TaggerConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& rope);

  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  EvaAttention attn{nullptr};
  SwiGlu swiglu{nullptr};  // registered as "mlp"
  Mlp mlp{nullptr};        // without SwiGLU
};
TORCH_MODULE(EvaBlock);

class Eva02Net : public TaggerNet {
 public:
  explicit Eva02Net(const TaggerConfig& config);
  torch::Tensor forward(const torch::Tensor& pixels) override;

 private:
  TaggerConfig config_;
  torch::Tensor cls_token_, pos_embed_, rope_;  // rope_: computed, not a file tensor
  PatchEmbed patch_embed_{nullptr};
  torch::nn::ModuleList blocks_;
  nn::LayerNorm norm_{nullptr}, fc_norm_{nullptr};
  nn::Linear head_{nullptr};
};

}  // namespace ls::caption
