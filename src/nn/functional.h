// Stateless pieces shared by the SDXL models: attention, timestep embedding, activations.
#pragma once

#include <ATen/core/Tensor.h>

namespace ls::nn {

/// Multi-head scaled dot-product attention.
/// q [B, N, H*D], k/v [B, M, H*D] -> [B, N, H*D]; softmax(q kᵀ / sqrt(D)) v per head.
/// causal: position i attends to j <= i only (CLIP text). Through at::scaled_dot_product_attention
/// (fused kernels on CUDA).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t heads,
                     bool causal = false);

/// The explicit formula, matmul + softmax chunked over heads to bound memory (the reference the
/// fused path is tested against).
at::Tensor attention_math(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          int64_t heads, bool causal = false);

/// torch::conv2d with square stride and padding (groups and dilation 1), the CPU kernel chosen by
/// the output's size: float32 outputs of at most kSmallConvOutput pixels per image, with a weight
/// that needs no gradient (the frozen base; input gradients are fine), go through
/// unfold + GEMM (ATen's slow_conv2d: MKL's sgemm, as a linear layer), larger ones and every other
/// device and dtype through at::conv2d (oneDNN, cuDNN). oneDNN's direct kernels are slow on the
/// SDXL UNet's deep levels: fp32, 2 threads, forward+backward, 8x8 1280->1280 at 54 GFLOP/s
/// against 122 by GEMM, 16x16 114 against 167, while at 32x32 oneDNN is ahead (134-162 against
/// 116-145) and at 64x64 far ahead (bench notes, issue 21).
at::Tensor conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                  int64_t padding);
inline constexpr int64_t kSmallConvOutput = 16 * 16;

/// While alive on this thread, conv2d() takes at::conv2d at every size: the other side of the
/// choice, for the tests that compare the two and the benchmark that times them.
class DirectConvGuard {
 public:
  DirectConvGuard();
  ~DirectConvGuard();
  DirectConvGuard(const DirectConvGuard&) = delete;
  DirectConvGuard& operator=(const DirectConvGuard&) = delete;

 private:
  bool previous_;
};

/// Sinusoidal embedding as SGM's timestep_embedding: t [B] (any numeric dtype) -> [B, dim] float32,
/// [cos(t f_0..f_{h-1}), sin(t f_0..f_{h-1})], f_i = exp(-ln(max_period) i / h), h = dim / 2;
/// an odd dim gets a zero column.
at::Tensor timestep_embedding(const at::Tensor& t, int64_t dim, double max_period = 10000.0);

/// x * sigmoid(1.702 x) (OpenAI CLIP's quick_gelu).
at::Tensor quick_gelu(const at::Tensor& x);

}  // namespace ls::nn
