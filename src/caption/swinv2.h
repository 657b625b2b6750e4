// timm's SwinTransformerV2 (timm/models/swin_transformer_v2.py), the base of wd-swinv2-tagger-v3
// (window 14 at 448 px): patch embedding with LayerNorm, four stages of shifted-window attention
// with scaled cosine attention (learned per-head logit scale, clamped at log 100) and a
// continuous relative position bias (a 2-512-heads MLP over log-spaced offsets, 16 sigmoid),
// post-norm residuals (x + norm(attn(x))), patch merging at the start of stages 1..3, average
// pooling, head.fc. LayerNorm eps 1e-5 (torch's default) throughout.
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include "caption/tagger_net.h"

namespace ls::caption {

class SwinAttentionImpl : public torch::nn::Module {
 public:
  SwinAttentionImpl(int64_t dim, int64_t heads, int64_t window, int64_t pretrained_window);
  /// windows [nW*B, w*w, C], mask [nW, w*w, w*w] or undefined -> [nW*B, w*w, C]
  torch::Tensor forward(const torch::Tensor& windows, const torch::Tensor& mask);

  torch::Tensor logit_scale, q_bias, v_bias;
  torch::nn::Sequential cpb_mlp{nullptr};  // "0": Linear(2, 512), "1": ReLU, "2": Linear(512, heads, no bias)
  nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t heads_;
  torch::Tensor coords_table_, position_index_;  // computed from the window, not file tensors
};
TORCH_MODULE(SwinAttention);

class SwinBlockImpl : public torch::nn::Module {
 public:
  /// resolution: the stage's token grid side; window and shift as timm derives them from it.
  SwinBlockImpl(int64_t dim, int64_t heads, int64_t resolution, int64_t window, bool shifted,
                int64_t pretrained_window, double mlp_ratio, const std::string& act_layer);
  torch::Tensor forward(const torch::Tensor& x);  // [B, H, W, C] -> [B, H, W, C]

  SwinAttention attn{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Mlp mlp{nullptr};

 private:
  int64_t window_, shift_;
  torch::Tensor mask_;  // [nW, w*w, w*w] with -100 across shifted regions, undefined without shift
};
TORCH_MODULE(SwinBlock);

/// Patch merging: 2x2 neighbours concatenated (4C), reduced to 2C, normalised.
class PatchMergingImpl : public torch::nn::Module {
 public:
  PatchMergingImpl(int64_t dim, int64_t out_dim);
  torch::Tensor forward(const torch::Tensor& x);  // [B, H, W, C] -> [B, ceil(H/2), ceil(W/2), out]

  nn::Linear reduction{nullptr};
  nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(PatchMerging);

class SwinV2Net : public TaggerNet {
 public:
  explicit SwinV2Net(const TaggerConfig& config);
  torch::Tensor forward(const torch::Tensor& pixels) override;

  /// File key -> module key for checkpoints in the original layout (downsample at the end of a
  /// stage, "head." without ".fc"), as timm's checkpoint_filter_fn converts them.
  static std::string legacy_key(const std::string& key);

 private:
  TaggerConfig config_;
  PatchEmbed patch_embed_{nullptr};
  nn::LayerNorm patch_norm_{nullptr};  // patch_embed.norm
  torch::nn::ModuleList layers_;
  nn::LayerNorm norm_{nullptr};
  nn::Linear head_fc_{nullptr};
};

}  // namespace ls::caption
