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

/// Sinusoidal embedding as SGM's timestep_embedding: t [B] (any numeric dtype) -> [B, dim] float32,
/// [cos(t f_0..f_{h-1}), sin(t f_0..f_{h-1})], f_i = exp(-ln(max_period) i / h), h = dim / 2;
/// an odd dim gets a zero column.
at::Tensor timestep_embedding(const at::Tensor& t, int64_t dim, double max_period = 10000.0);

/// x * sigmoid(1.702 x) (OpenAI CLIP's quick_gelu).
at::Tensor quick_gelu(const at::Tensor& x);

}  // namespace ls::nn
