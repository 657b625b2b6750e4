// The function types the samplers are built over: the denoiser, the noise source and the per-step
// report (k-diffusion's model, noise_sampler and callback). Apart from samplers.h so the samplers'
// shared plumbing (samplers_internal.h) needs only these.
#pragma once

#include <cstdint>
#include <functional>

#include <ATen/core/Tensor.h>

namespace ls::sample {

/// The denoiser D(x, sigma) -> x0 estimate (k-diffusion's "model"): x [B, ...] in the variance-exploding
/// convention x = x0 + sigma * eps; sigma [B] on x's device in x's dtype. Returns a tensor shaped as x.
using DenoiseFn = std::function<at::Tensor(const at::Tensor& x, const at::Tensor& sigma)>;
/// k-diffusion's noise_sampler(sigma, sigma_next): unit-variance noise shaped as x for one stochastic
/// update between those noise levels.
using NoiseFn = std::function<at::Tensor(double sigma, double sigma_next)>;

/// One step's report (k-diffusion's callback dict): called once per step right after the step's first
/// model call. x is the sample that call saw (before the step's update), denoised its output.
struct StepInfo {
  int64_t step = 0;   // 0-based
  int64_t steps = 0;  // sigmas.size(0) - 1
  double sigma = 0, sigma_next = 0;
  at::Tensor x, denoised;
};
using StepCallback = std::function<void(const StepInfo&)>;

}  // namespace ls::sample
