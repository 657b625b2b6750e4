#include "nn/functional.h"

#include <cmath>

#include <torch/torch.h>

namespace ls::nn {

namespace {
// [B, N, H*D] -> [B, H, N, D]
at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
  auto b = x.size(0), n = x.size(1), c = x.size(2);
  return x.view({b, n, heads, c / heads}).transpose(1, 2);
}
// [B, H, N, D] -> [B, N, H*D]
at::Tensor merge_heads(const at::Tensor& x) {
  auto b = x.size(0), h = x.size(1), n = x.size(2), d = x.size(3);
  return x.transpose(1, 2).reshape({b, n, h * d});
}
}  // namespace

at::Tensor attention_math(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          int64_t heads, bool causal) {
  TORCH_CHECK(q.size(2) % heads == 0, "attention: channels ", q.size(2), " not divisible by heads ", heads);
  auto qh = split_heads(q, heads), kh = split_heads(k, heads), vh = split_heads(v, heads);
  double scale = 1.0 / std::sqrt(static_cast<double>(qh.size(3)));
  int64_t n = qh.size(2), m = kh.size(2);
  at::Tensor mask;
  if (causal) {
    mask = torch::ones({n, m}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).triu(1);
  }
  // One head-chunk at a time keeps the [N, M] score matrices of a 128x128 latent in check.
  const int64_t budget = int64_t(1) << 28;  // score elements per chunk
  int64_t per_head = qh.size(0) * n * m;
  int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(heads, budget / std::max<int64_t>(1, per_head)));
  std::vector<at::Tensor> outs;
  for (int64_t h0 = 0; h0 < heads; h0 += chunk) {
    int64_t h1 = std::min(heads, h0 + chunk);
    auto qs = qh.slice(1, h0, h1), ks = kh.slice(1, h0, h1), vs = vh.slice(1, h0, h1);
    auto scores = torch::matmul(qs, ks.transpose(-1, -2)) * scale;  // [B, h, N, M]
    if (causal) scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
    outs.push_back(torch::matmul(scores.softmax(-1), vs));
  }
  auto out = outs.size() == 1 ? outs[0] : torch::cat(outs, 1);
  return merge_heads(out);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     bool causal) {
  TORCH_CHECK(q.size(2) % heads == 0, "attention: channels ", q.size(2), " not divisible by heads ", heads);
  // ATen picks the kernel: flash / memory-efficient / cuDNN on CUDA, its blocked flash kernel or
  // the math path on CPU; the scale defaults to 1/sqrt(D), the mask is the causal triangle.
  auto out = at::scaled_dot_product_attention(split_heads(q, heads), split_heads(k, heads),
                                              split_heads(v, heads), {}, 0.0, causal);
  return merge_heads(out);
}

namespace {
thread_local bool g_direct_conv = false;
}  // namespace

DirectConvGuard::DirectConvGuard() : previous_(g_direct_conv) { g_direct_conv = true; }
DirectConvGuard::~DirectConvGuard() { g_direct_conv = previous_; }

at::Tensor conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                  int64_t padding) {
  // Frozen weights only: ATen's slow_conv2d refuses a weight gradient here ("grad_weight must be
  // contiguous" for a trained LoCon's weight), and the trained weights are the small ones.
  if (!g_direct_conv && x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 4 && weight.dim() == 4 &&
      !weight.requires_grad()) {
    const int64_t out_h = (x.size(2) + 2 * padding - weight.size(2)) / stride + 1;
    const int64_t out_w = (x.size(3) + 2 * padding - weight.size(3)) / stride + 1;
    if (out_h * out_w <= kSmallConvOutput) {
      return at::thnn_conv2d(x, weight, {weight.size(2), weight.size(3)}, bias, {stride, stride},
                             {padding, padding});
    }
  }
  return at::conv2d(x, weight, bias, {stride, stride}, {padding, padding});
}

at::Tensor timestep_embedding(const at::Tensor& t, int64_t dim, double max_period) {
  int64_t half = dim / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(t.device());
  auto freqs = torch::exp(-std::log(max_period) * torch::arange(0, half, opts) / static_cast<double>(half));
  auto args = t.to(torch::kFloat).unsqueeze(1) * freqs.unsqueeze(0);  // [B, half]
  auto emb = torch::cat({torch::cos(args), torch::sin(args)}, -1);
  if (dim % 2) emb = torch::cat({emb, torch::zeros({emb.size(0), 1}, opts)}, -1);
  return emb;
}

at::Tensor quick_gelu(const at::Tensor& x) { return x * torch::sigmoid(1.702 * x); }

}  // namespace ls::nn
