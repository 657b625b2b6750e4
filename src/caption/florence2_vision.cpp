#include "caption/florence2_vision.h"

#include <cmath>
#include <string>

#include <torch/torch.h>

#include "core/error.h"

namespace ls::caption {

namespace {

void f2v_check_config(const Florence2VisionConfig& c) {
  const size_t n = c.embed_dim.size();
  LS_CHECK(n > 0 && c.depths.size() == n && c.num_heads.size() == n && c.num_groups.size() == n &&
               c.patch_size.size() == n && c.patch_stride.size() == n && c.patch_padding.size() == n &&
               c.patch_prenorm.size() == n,
           "Florence-2 vision config: depths, patch_*, embed_dim, num_heads and num_groups need one entry per "
           "stage, got ", n, " embed_dim entries");
  LS_CHECK(c.window_size > 0, "Florence-2 vision config: window_size must be positive, got ", c.window_size);
  for (size_t i = 0; i < n; ++i) {
    LS_CHECK(c.num_heads[i] > 0 && c.embed_dim[i] % c.num_heads[i] == 0, "Florence-2 vision config: stage ", i,
             ": embed_dim ", c.embed_dim[i], " is not divisible by num_heads ", c.num_heads[i]);
    LS_CHECK(c.num_groups[i] > 0 && c.embed_dim[i] % c.num_groups[i] == 0, "Florence-2 vision config: stage ", i,
             ": embed_dim ", c.embed_dim[i], " is not divisible by num_groups ", c.num_groups[i]);
  }
}

}  // namespace

Florence2DepthwiseConvImpl::Florence2DepthwiseConvImpl(int64_t channels) {
  weight = learned(*this, "weight", {channels, 1, 3, 3});
  bias = learned(*this, "bias", {channels});
}

torch::Tensor Florence2DepthwiseConvImpl::forward(const torch::Tensor& x) {
  auto xc = x.permute({0, 3, 1, 2});  // [B, C, H, W] logical, channels_last in memory
  auto y = torch::conv2d(xc, weight, bias, {1, 1}, {1, 1}, {1, 1}, x.size(3));
  // xc first: the sum takes its (channels-last) layout, so the permute back is contiguous.
  return (xc + y).permute({0, 2, 3, 1}).contiguous();
}

Florence2ConvEmbedImpl::Florence2ConvEmbedImpl(int64_t in_channels, int64_t out_channels, int64_t kernel,
                                               int64_t stride, int64_t padding, bool pre_norm)
    : pre_norm_(pre_norm) {
  conv = register_module("conv", nn::Conv2d(in_channels, out_channels, kernel, stride, padding));
  norm = register_module("norm", nn::LayerNorm(pre_norm ? in_channels : out_channels, 1e-5));
}

torch::Tensor Florence2ConvEmbedImpl::forward(const torch::Tensor& x) {
  auto y = conv(pre_norm_ ? norm(x).permute({0, 3, 1, 2}) : x.permute({0, 3, 1, 2}));  // [B, Cout, H', W']
  auto out = y.permute({0, 2, 3, 1});                                                  // [B, H', W', Cout]
  return pre_norm_ ? out.contiguous() : norm(out);
}

Florence2WindowAttentionImpl::Florence2WindowAttentionImpl(int64_t dim, int64_t heads, int64_t window, bool qkv_bias)
    : heads_(heads), window_(window) {
  qkv = register_module("qkv", nn::Linear(dim, 3 * dim, qkv_bias));
  proj = register_module("proj", nn::Linear(dim, dim));
}

torch::Tensor Florence2WindowAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3), w = window_;
  const int64_t pad_bottom = (w - H % w) % w, pad_right = (w - W % w) % w;
  auto h = (pad_bottom || pad_right) ? torch::constant_pad_nd(x, {0, 0, 0, pad_right, 0, pad_bottom}) : x;
  const int64_t nh = (H + pad_bottom) / w, nw = (W + pad_right) / w, T = w * w, D = C / heads_;
  auto windows = h.view({B, nh, w, nw, w, C}).permute({0, 1, 3, 2, 4, 5}).reshape({B * nh * nw, T, C});
  auto parts = qkv(windows).view({B * nh * nw, T, 3, heads_, D}).permute({2, 0, 3, 1, 4});  // [3, Bw, heads, T, D]
  auto out = at::scaled_dot_product_attention(parts[0], parts[1], parts[2]);  // [Bw, heads, T, D], scale 1/sqrt(D)
  // Heads merged and windows put back on the grid in one copy:
  // [B, nh, nw, heads, wy, wx, D] -> [B, nh, wy, nw, wx, heads, D] = [B, H', W', C].
  out = out.view({B, nh, nw, heads_, w, w, D}).permute({0, 1, 4, 2, 5, 3, 6}).reshape({B, nh * w, nw * w, C});
  if (pad_bottom || pad_right) out = out.slice(1, 0, H).slice(2, 0, W);
  return proj(out);  // per token, so applied after the crop: the padded tokens need no projection
}

Florence2ChannelAttentionImpl::Florence2ChannelAttentionImpl(int64_t dim, int64_t groups, bool qkv_bias)
    : groups_(groups) {
  qkv = register_module("qkv", nn::Linear(dim, 3 * dim, qkv_bias));
  proj = register_module("proj", nn::Linear(dim, dim));
}

torch::Tensor Florence2ChannelAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2), G = groups_, d = C / G;
  auto parts = qkv(x).view({B, N, 3, G, d});
  const double scale = 1.0 / std::sqrt(static_cast<double>(N));
  auto out = torch::empty({B, N, G, d}, x.options());
  // One image at a time: q, k, v are then strided views a batched GEMM reads in place (batch
  // stride d, leading dimension 3C), where a 4-D matmul would copy each of them first.
  for (int64_t b = 0; b < B; ++b) {
    auto t = parts[b];                               // [N, 3, G, d]
    auto q = t.select(1, 0).permute({1, 2, 0});      // [G, d, N]
    auto k = t.select(1, 1).transpose(0, 1);         // [G, N, d]
    auto v = t.select(1, 2).transpose(0, 1);         // [G, N, d]
    // scale q kᵀ inside the GEMM (alpha): the fp32 accumulator is scaled before fp16/bf16
    // rounding, so sums over N tokens cannot overflow; beta = 0 ignores the empty tensor.
    auto attn = torch::empty({G, d, d}, x.options()).baddbmm_(q, k, 0.0, scale).softmax(-1);  // [G, d, d]
    out[b].copy_(torch::bmm(v, attn.transpose(1, 2)).transpose(0, 1));  // (attn vᵀ)ᵀ: [G, N, d] -> [N, G, d]
  }
  return proj(out.view({B, N, C}));  // channel g * d + i
}

Florence2SpatialBlockImpl::Florence2SpatialBlockImpl(const Florence2VisionConfig& c, int64_t stage) {
  const int64_t dim = c.embed_dim[stage];
  conv1 = register_module("conv1", Florence2DepthwiseConv(dim));
  norm1 = register_module("norm1", nn::LayerNorm(dim, 1e-5));
  window_attn = register_module("window_attn",
                                Florence2WindowAttention(dim, c.num_heads[stage], c.window_size, c.qkv_bias));
  conv2 = register_module("conv2", Florence2DepthwiseConv(dim));
  norm2 = register_module("norm2", nn::LayerNorm(dim, 1e-5));
  ffn = register_module("ffn", Mlp(dim, static_cast<int64_t>(static_cast<double>(dim) * c.mlp_ratio), "gelu"));
}

torch::Tensor Florence2SpatialBlockImpl::forward(torch::Tensor x) {
  x = conv1(x);
  x = x + window_attn(norm1(x));
  x = conv2(x);
  return x + ffn(norm2(x));
}

Florence2ChannelBlockImpl::Florence2ChannelBlockImpl(const Florence2VisionConfig& c, int64_t stage) {
  const int64_t dim = c.embed_dim[stage];
  conv1 = register_module("conv1", Florence2DepthwiseConv(dim));
  norm1 = register_module("norm1", nn::LayerNorm(dim, 1e-5));
  channel_attn = register_module("channel_attn", Florence2ChannelAttention(dim, c.num_groups[stage], c.qkv_bias));
  conv2 = register_module("conv2", Florence2DepthwiseConv(dim));
  norm2 = register_module("norm2", nn::LayerNorm(dim, 1e-5));
  ffn = register_module("ffn", Mlp(dim, static_cast<int64_t>(static_cast<double>(dim) * c.mlp_ratio), "gelu"));
}

torch::Tensor Florence2ChannelBlockImpl::forward(torch::Tensor x) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  x = conv1(x);
  x = x + channel_attn(norm1(x).view({B, H * W, C})).view({B, H, W, C});
  x = conv2(x);
  return x + ffn(norm2(x));
}

Florence2VisionBlockImpl::Florence2VisionBlockImpl(const Florence2VisionConfig& c, int64_t stage) {
  spatial_block = register_module("spatial_block", Florence2SpatialBlock(c, stage));
  channel_block = register_module("channel_block", Florence2ChannelBlock(c, stage));
}

torch::Tensor Florence2VisionBlockImpl::forward(const torch::Tensor& x) {
  return channel_block(spatial_block(x));
}

Florence2VisionImpl::Florence2VisionImpl(const Florence2VisionConfig& config) : config_(config) {
  f2v_check_config(config_);
  const auto& c = config_;
  auto convs = register_module("convs", torch::nn::ModuleList());
  auto blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t s = 0; s < c.stages(); ++s) {
    const int64_t in = s == 0 ? 3 : c.embed_dim[s - 1];
    convs_.push_back(Florence2ConvEmbed(in, c.embed_dim[s], c.patch_size[s], c.patch_stride[s], c.patch_padding[s],
                                        c.patch_prenorm[s]));
    convs->push_back(convs_.back());
    auto stage = torch::nn::ModuleList();
    blocks_.emplace_back();
    for (int64_t j = 0; j < c.depths[s]; ++j) {
      blocks_.back().push_back(Florence2VisionBlock(c, s));
      stage->push_back(blocks_.back().back());
    }
    blocks->push_back(stage);
  }
}

torch::Tensor Florence2VisionImpl::forward(const torch::Tensor& pixels) {
  LS_CHECK(pixels.dim() == 4 && pixels.size(1) == 3, "Florence-2 vision: pixels must be [B, 3, H, W], got ",
           pixels.sizes());
  auto x = pixels.to(convs_[0]->conv->weight.scalar_type()).permute({0, 2, 3, 1});  // [B, H, W, 3]
  for (size_t s = 0; s < convs_.size(); ++s) {
    x = convs_[s](x);  // [B, H_s, W_s, C_s]
    for (auto& block : blocks_[s]) x = block(x);
  }
  return x.permute({0, 3, 1, 2});  // [B, C, h, w], channels-last memory
}

}  // namespace ls::caption
