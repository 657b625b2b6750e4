// timm's VisionTransformer as the WD14 ViT taggers use it (timm/models/vision_transformer.py):
// learned absolute positions, optional class token, pre-norm blocks (LayerNorm eps 1e-6), final
// norm or fc_norm after pooling, GELU or tanh-GELU MLP. wd-vit-tagger-v3 / wd-vit-large-tagger-v3
// run it without a class token, average-pooled, with the final norm before pooling.
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include "caption/tagger_net.h"

namespace ls::caption {

/// timm's vision_transformer.Attention: fused qkv, scaled dot-product attention, proj.
class VitAttentionImpl : public torch::nn::Module {
 public:
  VitAttentionImpl(int64_t dim, int64_t heads, bool qkv_bias);
  torch::Tensor forward(const torch::Tensor& x);  // [B, N, C] -> [B, N, C]

  nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(VitAttention);

class VitBlockImpl : public torch::nn::Module {
 public:
  explicit VitBlockImpl(const TaggerConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // x + attn(norm1(x)), then + mlp(norm2(x))

  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  VitAttention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(VitBlock);

class VitNet : public TaggerNet {
 public:
  explicit VitNet(const TaggerConfig& config);
  torch::Tensor forward(const torch::Tensor& pixels) override;

 private:
  TaggerConfig config_;
  torch::Tensor cls_token_, pos_embed_;
  PatchEmbed patch_embed_{nullptr};
  torch::nn::ModuleList blocks_;
  nn::LayerNorm norm_{nullptr}, fc_norm_{nullptr};  // one of them, by uses_fc_norm()
  nn::Linear head_{nullptr};
};

}  // namespace ls::caption
