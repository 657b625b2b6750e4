// Reference formulas for the SDXL UNet blocks, written from SGM's definitions
// (generative-models openaimodel.py, attention.py) with plain tensor ops and the module's
// parameters looked up by checkpoint name — independent of src/models/unet_blocks.cpp.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include <torch/torch.h>

#include "nn/functional.h"

namespace ls::test::unet_ref {

using Params = torch::OrderedDict<std::string, torch::Tensor>;

inline torch::Tensor param(const Params& ps, const std::string& name) {
  const auto* t = ps.find(name);
  if (!t) throw std::runtime_error("reference: no parameter " + name);
  return *t;
}
inline bool has(const Params& ps, const std::string& name) { return ps.find(name) != nullptr; }

inline torch::Tensor silu_ref(const torch::Tensor& x) { return x * torch::sigmoid(x); }
inline torch::Tensor gelu_erf(const torch::Tensor& x) { return 0.5 * x * (1 + torch::erf(x / std::sqrt(2.0))); }

inline torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b = {}) {
  auto y = torch::matmul(x, w.t());
  return b.defined() ? y + b : y;
}

/// Biased variance per (sample, group), then per-channel affine; x [B, C, ...].
inline torch::Tensor group_norm_ref(const torch::Tensor& x, int64_t groups, const torch::Tensor& w,
                                const torch::Tensor& b, double eps) {
  auto g = x.reshape({x.size(0), groups, -1});
  auto mean = g.mean(-1, true);
  auto var = (g - mean).pow(2).mean(-1, true);
  auto n = ((g - mean) / torch::sqrt(var + eps)).reshape(x.sizes());
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = x.size(1);
  return n * w.view(shape) + b.view(shape);
}

inline torch::Tensor layer_norm_ref(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                                double eps = 1e-5) {
  auto mean = x.mean(-1, true);
  auto var = (x - mean).pow(2).mean(-1, true);
  return (x - mean) / torch::sqrt(var + eps) * w + b;
}

/// GroupNorm(32) -> SiLU -> conv3x3, + Linear(SiLU(emb)), GroupNorm(32) -> SiLU -> conv3x3, + skip.
inline torch::Tensor res_block(const Params& ps, const std::string& pre, const torch::Tensor& x,
                               const torch::Tensor& emb) {
  auto P = [&](const std::string& n) { return param(ps, pre + n); };
  auto h = silu_ref(group_norm_ref(x, 32, P("in_layers.0.weight"), P("in_layers.0.bias"), 1e-5));
  h = torch::conv2d(h, P("in_layers.2.weight"), P("in_layers.2.bias"), 1, 1);
  h = h + dense(silu_ref(emb), P("emb_layers.1.weight"), P("emb_layers.1.bias")).unsqueeze(-1).unsqueeze(-1);
  h = silu_ref(group_norm_ref(h, 32, P("out_layers.0.weight"), P("out_layers.0.bias"), 1e-5));
  h = torch::conv2d(h, P("out_layers.3.weight"), P("out_layers.3.bias"), 1, 1);
  auto skip = has(ps, pre + "skip_connection.weight")
                  ? torch::conv2d(x, P("skip_connection.weight"), P("skip_connection.bias"))
                  : x;
  return skip + h;
}

/// Zero padding of 1 made explicit, then a stride-2 3x3 convolution.
inline torch::Tensor downsample(const Params& ps, const std::string& pre, const torch::Tensor& x) {
  auto padded = torch::constant_pad_nd(x, {1, 1, 1, 1}, 0);
  return torch::conv2d(padded, param(ps, pre + "op.weight"), param(ps, pre + "op.bias"), 2);
}

/// Each pixel repeated 2x2, then a 3x3 convolution with padding 1.
inline torch::Tensor upsample(const Params& ps, const std::string& pre, const torch::Tensor& x) {
  auto up = x.repeat_interleave(2, 2).repeat_interleave(2, 3);
  return torch::conv2d(up, param(ps, pre + "conv.weight"), param(ps, pre + "conv.bias"), 1, 1);
}

inline torch::Tensor attention(const Params& ps, const std::string& pre, const torch::Tensor& x,
                               const torch::Tensor& ctx, int64_t heads) {
  auto q = dense(x, param(ps, pre + "to_q.weight"));
  auto k = dense(ctx, param(ps, pre + "to_k.weight"));
  auto v = dense(ctx, param(ps, pre + "to_v.weight"));
  auto a = ls::nn::attention_math(q, k, v, heads);
  return dense(a, param(ps, pre + "to_out.0.weight"), param(ps, pre + "to_out.0.bias"));
}

/// proj -> first half * gelu(second half) -> Linear.
inline torch::Tensor feed_forward(const Params& ps, const std::string& pre, const torch::Tensor& x) {
  auto p = dense(x, param(ps, pre + "net.0.proj.weight"), param(ps, pre + "net.0.proj.bias"));
  int64_t inner = p.size(-1) / 2;
  auto h = p.slice(-1, 0, inner) * gelu_erf(p.slice(-1, inner, 2 * inner));
  return dense(h, param(ps, pre + "net.2.weight"), param(ps, pre + "net.2.bias"));
}

inline torch::Tensor transformer_block(const Params& ps, const std::string& pre, const torch::Tensor& x,
                                       const torch::Tensor& ctx, int64_t heads) {
  auto N = [&](const std::string& n, const torch::Tensor& t) {
    return layer_norm_ref(t, param(ps, pre + n + ".weight"), param(ps, pre + n + ".bias"));
  };
  auto h1 = x + attention(ps, pre + "attn1.", N("norm1", x), N("norm1", x), heads);
  auto h2 = h1 + attention(ps, pre + "attn2.", N("norm2", h1), ctx, heads);
  return h2 + feed_forward(ps, pre + "ff.", N("norm3", h2));
}

/// Linear proj_in/out variant; tokens in row-major (h, w) order: [B, C, H, W] -> [B, H*W, C].
inline torch::Tensor spatial_transformer(const Params& ps, const std::string& pre, const torch::Tensor& x,
                                         const torch::Tensor& ctx, int64_t heads, int64_t depth) {
  int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto t = group_norm_ref(x, 32, param(ps, pre + "norm.weight"), param(ps, pre + "norm.bias"), 1e-6);
  t = t.permute({0, 2, 3, 1}).reshape({b, h * w, c});
  t = dense(t, param(ps, pre + "proj_in.weight"), param(ps, pre + "proj_in.bias"));
  for (int64_t i = 0; i < depth; ++i) {
    t = transformer_block(ps, pre + "transformer_blocks." + std::to_string(i) + ".", t, ctx, heads);
  }
  t = dense(t, param(ps, pre + "proj_out.weight"), param(ps, pre + "proj_out.bias"));
  return t.reshape({b, h, w, c}).permute({0, 3, 1, 2}) + x;
}

/// [cos(t f_i), sin(t f_i)], f_i = 10000^(-i/half), element by element in double.
inline torch::Tensor timestep_embedding(const std::vector<double>& t, int64_t dim) {
  int64_t half = dim / 2;
  auto out = torch::zeros({static_cast<int64_t>(t.size()), dim}, torch::kDouble);
  auto acc = out.accessor<double, 2>();
  for (size_t r = 0; r < t.size(); ++r) {
    for (int64_t i = 0; i < half; ++i) {
      double f = std::exp(-std::log(10000.0) * static_cast<double>(i) / static_cast<double>(half));
      acc[r][i] = std::cos(t[r] * f);
      acc[r][half + i] = std::sin(t[r] * f);
    }
  }
  return out;
}

/// Norm weights/biases start at 1/0; shift every 1-D parameter so a swapped weight and bias shows.
inline void randomize_vectors(torch::nn::Module& m, double scale = 0.3) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) {
    if (p.dim() == 1) p.add_(torch::randn_like(p) * scale);
  }
}

}  // namespace ls::test::unet_ref
