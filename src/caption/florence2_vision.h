// Florence-2's image encoder: DaViT (Ding et al. 2022) as transformers 5.23 ports it
// (transformers/models/florence2/modeling_florence2.py: Florence2VisionBackbone, ConvEmbed,
// SpatialBlock, ChannelBlock, WindowAttention, ChannelAttention, MLP), with its parameter names,
// so the native model.safetensors loads under "model.vision_tower." as it is. The backbone ends
// at the last channel block (Florence-2 has no final norm or head). Inference only: drop-path is
// the identity. The residual stream is kept channels-last ([B, H, W, C] contiguous) throughout, so
// LayerNorms and Linears read it without copies and the depthwise convolutions see channels_last.
#pragma once

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "caption/florence2_config.h"
#include "caption/tagger_net.h"
#include "nn/layers.h"

namespace ls::caption {

/// Depthwise 3x3 convolution (groups = channels, padding 1) with its residual: DaViT's
/// convolutional position encoding ("conv1" / "conv2" of each block).
class Florence2DepthwiseConvImpl : public torch::nn::Module {
 public:
  explicit Florence2DepthwiseConvImpl(int64_t channels);
  /// x [B, H, W, C] -> x + conv(x) [B, H, W, C]
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;  // [C, 1, 3, 3]
  torch::Tensor bias;    // [C]
};
TORCH_MODULE(Florence2DepthwiseConv);

/// A stage's patch embedding: a strided convolution with a LayerNorm over channels before it
/// (pre_norm, stages 1..3: "norm" has the input's width) or after it (stage 0).
class Florence2ConvEmbedImpl : public torch::nn::Module {
 public:
  Florence2ConvEmbedImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride,
                         int64_t padding, bool pre_norm);
  /// x [B, H, W, Cin] (any strides) -> [B, H', W', Cout] contiguous
  torch::Tensor forward(const torch::Tensor& x);

  nn::Conv2d conv{nullptr};
  nn::LayerNorm norm{nullptr};

 private:
  bool pre_norm_;
};
TORCH_MODULE(Florence2ConvEmbed);

/// Multi-head self-attention inside non-overlapping window x window tiles; the grid is padded
/// with zeros at the right and bottom to a multiple of the window (the padded tokens take part,
/// unmasked, as in the reference) and cropped back.
class Florence2WindowAttentionImpl : public torch::nn::Module {
 public:
  Florence2WindowAttentionImpl(int64_t dim, int64_t heads, int64_t window, bool qkv_bias);
  /// x [B, H, W, C] contiguous -> [B, H, W, C]; scale 1/sqrt(C / heads)
  torch::Tensor forward(const torch::Tensor& x);

  nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t heads_, window_;
};
TORCH_MODULE(Florence2WindowAttention);

/// DaViT's channel ("group") attention: per group of C/groups channels, channel-to-channel
/// attention whose dot products run over the N tokens, scaled by 1/sqrt(N) (the number of tokens,
/// as the reference's `scale = num_tokens**-0.5`; neither the head nor the group width).
class Florence2ChannelAttentionImpl : public torch::nn::Module {
 public:
  Florence2ChannelAttentionImpl(int64_t dim, int64_t groups, bool qkv_bias);
  /// x [B, N, C] contiguous -> [B, N, C]
  torch::Tensor forward(const torch::Tensor& x);

  nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t groups_;
};
TORCH_MODULE(Florence2ChannelAttention);

/// conv1 (+residual) -> x + window_attn(norm1(x)) -> conv2 (+residual) -> x + ffn(norm2(x)).
class Florence2SpatialBlockImpl : public torch::nn::Module {
 public:
  Florence2SpatialBlockImpl(const Florence2VisionConfig& config, int64_t stage);
  /// x [B, H, W, C] contiguous -> [B, H, W, C] contiguous
  torch::Tensor forward(torch::Tensor x);

  Florence2DepthwiseConv conv1{nullptr}, conv2{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Florence2WindowAttention window_attn{nullptr};
  Mlp ffn{nullptr};  // fc1 -> GELU (erf) -> fc2
};
TORCH_MODULE(Florence2SpatialBlock);

/// The same with channel attention in place of the window attention.
class Florence2ChannelBlockImpl : public torch::nn::Module {
 public:
  Florence2ChannelBlockImpl(const Florence2VisionConfig& config, int64_t stage);
  /// x [B, H, W, C] contiguous -> [B, H, W, C] contiguous
  torch::Tensor forward(torch::Tensor x);

  Florence2DepthwiseConv conv1{nullptr}, conv2{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Florence2ChannelAttention channel_attn{nullptr};
  Mlp ffn{nullptr};
};
TORCH_MODULE(Florence2ChannelBlock);

/// One DaViT block: the spatial block, then the channel block.
class Florence2VisionBlockImpl : public torch::nn::Module {
 public:
  Florence2VisionBlockImpl(const Florence2VisionConfig& config, int64_t stage);
  torch::Tensor forward(const torch::Tensor& x);  // [B, H, W, C] -> [B, H, W, C]

  Florence2SpatialBlock spatial_block{nullptr};
  Florence2ChannelBlock channel_block{nullptr};
};
TORCH_MODULE(Florence2VisionBlock);

/// Florence2VisionBackbone: "convs.{i}" (stage i's patch embedding) and "blocks.{i}.{j}".
class Florence2VisionImpl : public torch::nn::Module {
 public:
  explicit Florence2VisionImpl(const Florence2VisionConfig& config);
  /// pixels [B, 3, H, W] (normalised as the processor does) -> features [B, C_last, h, w] with
  /// h = H/32, w = W/32 (each stage: floor((n + 2 pad - k) / stride) + 1; 768 -> 24, 224 -> 7).
  /// The result is the reference's tensor in its logical NCHW layout, stored channels-last (a
  /// permuted view of a contiguous [B, h, w, C]), which is what the projector reads.
  torch::Tensor forward(const torch::Tensor& pixels);

  const Florence2VisionConfig& config() const { return config_; }

 private:
  Florence2VisionConfig config_;
  std::vector<Florence2ConvEmbed> convs_;                // registered as convs.{i}
  std::vector<std::vector<Florence2VisionBlock>> blocks_;  // registered as blocks.{i}.{j}
};
TORCH_MODULE(Florence2Vision);

}  // namespace ls::caption
