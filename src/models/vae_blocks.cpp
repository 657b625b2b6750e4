// SDXL VAE blocks; reference: Stability-AI/generative-models
// sgm/modules/diffusionmodules/model.py (ResnetBlock, AttnBlock, Downsample, Upsample, Normalize).
#include "models/vae_blocks.h"

#include <algorithm>
#include <vector>

#include <torch/torch.h>

#include "core/error.h"
#include "nn/functional.h"

namespace ls::models {

namespace {
constexpr int64_t kGroups = 32;
constexpr double kVaeNormEps = 1e-6;
}  // namespace

ls::nn::GroupNorm vae_normalize(int64_t channels) {
  LS_CHECK(channels % kGroups == 0, "VAE: GroupNorm(32) needs channels divisible by 32, got ", channels,
           "; choose ch (and ch * ch_mult) as multiples of 32");
  return ls::nn::GroupNorm(kGroups, channels, kVaeNormEps, /*upcast=*/false);
}

torch::Tensor vae_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            int64_t max_score_elements) {
  int64_t batch = q.size(0), n = q.size(1), m = k.size(1);
  int64_t rows = std::max<int64_t>(1, max_score_elements / std::max<int64_t>(1, batch * m));
  if (rows >= n) return ls::nn::attention(q, k, v, /*heads=*/1);
  // softmax is per query row, so splitting the queries leaves every number unchanged.
  std::vector<torch::Tensor> outs;
  for (int64_t start = 0; start < n; start += rows) {
    auto qs = q.slice(1, start, std::min(n, start + rows));  // [B, rows, C]
    outs.push_back(ls::nn::attention(qs, k, v, /*heads=*/1));
  }
  return torch::cat(outs, 1);  // [B, N, C]
}

VaeResnetBlockImpl::VaeResnetBlockImpl(int64_t in_channels, int64_t out_channels) {
  norm1 = register_module("norm1", vae_normalize(in_channels));
  conv1 = register_module("conv1", ls::nn::Conv2d(in_channels, out_channels, 3, 1, 1));
  norm2 = register_module("norm2", vae_normalize(out_channels));
  conv2 = register_module("conv2", ls::nn::Conv2d(out_channels, out_channels, 3, 1, 1));
  if (in_channels != out_channels) {
    nin_shortcut = register_module("nin_shortcut", ls::nn::Conv2d(in_channels, out_channels, 1));
  }
}

torch::Tensor VaeResnetBlockImpl::forward(const torch::Tensor& x) {
  auto h = conv1(torch::silu(norm1(x)));  // [B, out, H, W]
  h = conv2(torch::silu(norm2(h)));
  auto skip = nin_shortcut ? nin_shortcut(x) : x;
  return skip + h;
}

VaeAttnBlockImpl::VaeAttnBlockImpl(int64_t channels) {
  norm = register_module("norm", vae_normalize(channels));
  q = register_module("q", ls::nn::Conv2d(channels, channels, 1));
  k = register_module("k", ls::nn::Conv2d(channels, channels, 1));
  v = register_module("v", ls::nn::Conv2d(channels, channels, 1));
  proj_out = register_module("proj_out", ls::nn::Conv2d(channels, channels, 1));
}

torch::Tensor VaeAttnBlockImpl::forward(const torch::Tensor& x) {
  int64_t b = x.size(0), c = x.size(1), height = x.size(2), width = x.size(3);
  auto h = norm(x);
  // [B, C, H, W] -> [B, H*W, C]: every position is a token of C channels, one head.
  auto tokens = [](const torch::Tensor& t) { return t.flatten(2).transpose(1, 2).contiguous(); };
  auto out = vae_attention(tokens(q(h)), tokens(k(h)), tokens(v(h)));  // [B, H*W, C]
  out = out.transpose(1, 2).reshape({b, c, height, width});
  return x + proj_out(out);
}

VaeDownsampleImpl::VaeDownsampleImpl(int64_t channels) {
  conv = register_module("conv", ls::nn::Conv2d(channels, channels, 3, /*stride=*/2, /*padding=*/0));
}

torch::Tensor VaeDownsampleImpl::forward(const torch::Tensor& x) {
  // torch's conv pads symmetrically; ldm pads (left 0, right 1, top 0, bottom 1) itself.
  return conv(torch::constant_pad_nd(x, {0, 1, 0, 1}, 0));
}

torch::Tensor upsample_nearest_x2(const torch::Tensor& x) {
  int64_t b = x.size(0), c = x.size(1), height = x.size(2), width = x.size(3);
  return x.unsqueeze(3).unsqueeze(5)                      // [B, C, H, 1, W, 1]
      .expand({b, c, height, 2, width, 2})
      .reshape({b, c, 2 * height, 2 * width});
}

VaeUpsampleImpl::VaeUpsampleImpl(int64_t channels) {
  conv = register_module("conv", ls::nn::Conv2d(channels, channels, 3, 1, 1));
}

torch::Tensor VaeUpsampleImpl::forward(const torch::Tensor& x) { return conv(upsample_nearest_x2(x)); }

VaeMidBlockImpl::VaeMidBlockImpl(int64_t channels) {
  block_1 = register_module("block_1", VaeResnetBlock(channels, channels));
  attn_1 = register_module("attn_1", VaeAttnBlock(channels));
  block_2 = register_module("block_2", VaeResnetBlock(channels, channels));
}

torch::Tensor VaeMidBlockImpl::forward(const torch::Tensor& x) {
  return block_2(attn_1(block_1(x)));
}

}  // namespace ls::models
