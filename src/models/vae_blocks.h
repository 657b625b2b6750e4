// Building blocks of the SDXL VAE (AutoencoderKL, ldm naming): ResnetBlock without time
// embedding, the single-head AttnBlock ("vanilla"), Downsample and Upsample with conv.
// Reference: Stability-AI/generative-models sgm/modules/diffusionmodules/model.py
// (same network as CompVis/stable-diffusion ldm/modules/diffusionmodules/model.py).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "nn/layers.h"

namespace ls::models {

/// ldm's Normalize: GroupNorm(32, C, eps=1e-6, affine), computed in the input dtype (no upcast).
ls::nn::GroupNorm vae_normalize(int64_t channels);

/// Single-head softmax(q kᵀ / sqrt(C)) v over positions: q [B, N, C], k/v [B, M, C] -> [B, N, C].
/// Queries are processed in chunks so a chunk's score matrix holds at most max_score_elements
/// (a 128x128 latent has 16384 positions: one full score matrix would be 1 GB in fp32).
torch::Tensor vae_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            int64_t max_score_elements = int64_t(1) << 26);

/// norm1 -> silu -> conv1 -> norm2 -> silu -> conv2, plus the input (through the 1x1 nin_shortcut
/// when channels change). ldm's dropout is 0 in every VAE config and is left out.
class VaeResnetBlockImpl : public torch::nn::Module {
 public:
  VaeResnetBlockImpl(int64_t in_channels, int64_t out_channels);
  /// x [B, in, H, W] -> [B, out, H, W]
  torch::Tensor forward(const torch::Tensor& x);

  ls::nn::GroupNorm norm1{nullptr};
  ls::nn::Conv2d conv1{nullptr};
  ls::nn::GroupNorm norm2{nullptr};
  ls::nn::Conv2d conv2{nullptr};
  ls::nn::Conv2d nin_shortcut{nullptr};  // only when in != out
};
TORCH_MODULE(VaeResnetBlock);

/// Self-attention over the H*W positions with one head of C channels; q/k/v/proj_out are 1x1 convs.
class VaeAttnBlockImpl : public torch::nn::Module {
 public:
  explicit VaeAttnBlockImpl(int64_t channels);
  /// x [B, C, H, W] -> [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x);

  ls::nn::GroupNorm norm{nullptr};
  ls::nn::Conv2d q{nullptr};
  ls::nn::Conv2d k{nullptr};
  ls::nn::Conv2d v{nullptr};
  ls::nn::Conv2d proj_out{nullptr};
};
TORCH_MODULE(VaeAttnBlock);

/// Zero-pad one row at the bottom and one column at the right, then a 3x3 stride-2 conv.
class VaeDownsampleImpl : public torch::nn::Module {
 public:
  explicit VaeDownsampleImpl(int64_t channels);
  /// x [B, C, H, W] -> [B, C, floor(H/2), floor(W/2)]
  torch::Tensor forward(const torch::Tensor& x);

  ls::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(VaeDownsample);

/// Nearest-neighbour x2, then a 3x3 conv.
class VaeUpsampleImpl : public torch::nn::Module {
 public:
  explicit VaeUpsampleImpl(int64_t channels);
  /// x [B, C, H, W] -> [B, C, 2H, 2W]
  torch::Tensor forward(const torch::Tensor& x);

  ls::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(VaeUpsample);

/// Nearest-neighbour x2 by broadcasting (same values as F.interpolate(scale_factor=2,
/// mode="nearest"), and available for every dtype on every device).
torch::Tensor upsample_nearest_x2(const torch::Tensor& x);

/// ldm's mid block: block_1 -> attn_1 -> block_2 at the lowest resolution.
class VaeMidBlockImpl : public torch::nn::Module {
 public:
  explicit VaeMidBlockImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);

  VaeResnetBlock block_1{nullptr};
  VaeAttnBlock attn_1{nullptr};
  VaeResnetBlock block_2{nullptr};
};
TORCH_MODULE(VaeMidBlock);

}  // namespace ls::models
