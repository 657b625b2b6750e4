// Building blocks of the SDXL UNet: ResBlock, Downsample, Upsample and TimestepSequential match
// Stability-AI/generative-models sgm/modules/diffusionmodules/openaimodel.py; SpatialTransformer,
// BasicTransformerBlock, CrossAttention, FeedForward and GEGLU match sgm/modules/attention.py.
// Children are registered under SGM's names (in_layers.0, attn1.to_q, ff.net.0.proj, ...), so
// parameter paths are checkpoint keys; forward dispatches through typed members.
#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "nn/layers.h"

namespace ls::models {

/// GroupNorm groups of every UNet norm (SGM normalization(): GroupNorm32).
inline constexpr int64_t kUnetNormGroups = 32;

/// A parameter-less child module registered as `name`: stands for an nn.Sequential whose
/// numbered children are then registered on it (so "in_layers" + "2" gives "in_layers.2").
std::shared_ptr<torch::nn::Module> add_sequential(torch::nn::Module& parent, const std::string& name);

/// SGM ResBlock without scale-shift norm or up/down sampling (SDXL's configuration).
/// in_layers = [GroupNorm32, SiLU, conv3x3], emb_layers = [SiLU, linear],
/// out_layers = [GroupNorm32, SiLU, Dropout(0), conv3x3], skip_connection = conv1x1 if the width changes.
class ResBlockImpl : public torch::nn::Module {
 public:
  ResBlockImpl(int64_t channels, int64_t emb_channels, int64_t out_channels);
  /// x [B, C, H, W], emb [B, E] -> [B, out_channels, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);
  /// Recompute this block in backward instead of keeping its activations (kohya checkpoints
  /// every ResnetBlock and transformer block with --gradient_checkpointing).
  bool gradient_checkpointing = false;

 private:
  torch::Tensor body(const torch::Tensor& x, const torch::Tensor& emb);
  nn::GroupNorm in_norm_{nullptr};
  nn::Conv2d in_conv_{nullptr};
  nn::Linear emb_proj_{nullptr};
  nn::GroupNorm out_norm_{nullptr};
  nn::Conv2d out_conv_{nullptr};
  nn::Conv2d skip_{nullptr};  // null: identity
};
TORCH_MODULE(ResBlock);

/// 3x3 convolution with stride 2 and padding 1 (`op`).
class DownsampleImpl : public torch::nn::Module {
 public:
  DownsampleImpl(int64_t channels, int64_t out_channels);
  /// x [B, C, H, W] -> [B, out, ceil(H/2), ceil(W/2)]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  nn::Conv2d op_{nullptr};
};
TORCH_MODULE(Downsample);

/// Nearest-neighbour x2 then a 3x3 convolution with padding 1 (`conv`).
class UpsampleImpl : public torch::nn::Module {
 public:
  UpsampleImpl(int64_t channels, int64_t out_channels);
  /// x [B, C, H, W] -> [B, out, 2H, 2W]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  nn::Conv2d conv_{nullptr};
};
TORCH_MODULE(Upsample);

/// Multi-head attention: to_q/to_k/to_v without bias, to_out = [Linear, Dropout(0)].
/// Self-attention when context is undefined. Scale 1/sqrt(dim_head) as SDPA's default.
class CrossAttentionImpl : public torch::nn::Module {
 public:
  CrossAttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads, int64_t dim_head);
  /// x [B, N, query_dim], context [B, M, context_dim] or undefined -> [B, N, query_dim]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context = {});

 private:
  int64_t heads_;
  nn::Linear to_q_{nullptr}, to_k_{nullptr}, to_v_{nullptr}, to_out_{nullptr};
};
TORCH_MODULE(CrossAttention);

/// proj = Linear(dim_in, 2 dim_out); a, gate = chunk(proj(x), 2); a * gelu(gate) (exact erf gelu).
class GegluImpl : public torch::nn::Module {
 public:
  GegluImpl(int64_t dim_in, int64_t dim_out);
  /// x [..., dim_in] -> [..., dim_out]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  nn::Linear proj_{nullptr};
};
TORCH_MODULE(Geglu);

/// net = [GEGLU(dim, 4 dim), Dropout(0), Linear(4 dim, dim)] (SGM FeedForward with glu=True).
class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(int64_t dim, int64_t mult = 4);
  /// x [..., dim] -> [..., dim]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  Geglu in_{nullptr};
  nn::Linear out_{nullptr};
};
TORCH_MODULE(FeedForward);

/// Pre-norm block: x += attn1(norm1 x); x += attn2(norm2 x, context); x += ff(norm3 x).
class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t dim_head, int64_t context_dim);
  /// x [B, N, dim], context [B, M, context_dim] -> [B, N, dim]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);
  bool gradient_checkpointing = false;  // see ResBlockImpl

 private:
  torch::Tensor body(const torch::Tensor& x, const torch::Tensor& context);
  CrossAttention attn1_{nullptr};
  FeedForward ff_{nullptr};
  CrossAttention attn2_{nullptr};
  nn::LayerNorm norm1_{nullptr}, norm2_{nullptr}, norm3_{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

/// GroupNorm(32, C, eps 1e-6, no upcast) -> proj_in -> depth transformer blocks -> proj_out,
/// plus the input. use_linear: proj_in/out are Linear on [B, HW, C] (SDXL); else 1x1 convs.
class SpatialTransformerImpl : public torch::nn::Module {
 public:
  SpatialTransformerImpl(int64_t channels, int64_t heads, int64_t dim_head, int64_t depth,
                         int64_t context_dim, bool use_linear);
  /// x [B, C, H, W], context [B, M, context_dim] -> [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

 private:
  nn::GroupNorm norm_{nullptr};
  nn::Linear proj_in_linear_{nullptr}, proj_out_linear_{nullptr};
  nn::Conv2d proj_in_conv_{nullptr}, proj_out_conv_{nullptr};
  std::vector<BasicTransformerBlock> blocks_;
};
TORCH_MODULE(SpatialTransformer);

/// SGM's TimestepEmbedSequential: children "0", "1", ... each fed what it takes (x; x, emb;
/// x, context). One typed slot per child, so dispatch needs no casts.
class TimestepSequentialImpl : public torch::nn::Module {
 public:
  using Layer = std::variant<nn::Conv2d, ResBlock, SpatialTransformer, Downsample, Upsample>;

  template <typename M>
  void append(M module) {
    register_module(std::to_string(layers_.size()), module);
    layers_.emplace_back(std::in_place_type<M>, std::move(module));
  }
  /// x [B, C, H, W], emb [B, E], context [B, M, D] -> [B, C', H', W']
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& emb, const torch::Tensor& context);

 private:
  std::vector<Layer> layers_;
};
TORCH_MODULE(TimestepSequential);

}  // namespace ls::models
