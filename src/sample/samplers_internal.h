// Shared plumbing of the sampler files (not public API): the per-run state every k-diffusion sampler
// repeats (s_in, the callback, the noise call) and its scalar helpers (to_d, get_ancestral_step).
// Scalars are 0-dim CPU tensors in the sigmas' dtype, as k-diffusion's sigmas[i] arithmetic, so the
// float32 results round exactly as the reference's; a 0-dim CPU tensor also combines with x on any device.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "sample/denoise_fn.h"

namespace ls::sample::samplers_detail {

class SamplerRun {
 public:
  /// Validates x and sigmas (1-D, descending-or-equal, non-negative, float) and keeps a CPU copy.
  SamplerRun(const char* name, const DenoiseFn& model, const at::Tensor& x, const at::Tensor& sigmas,
             const StepCallback& cb);

  int64_t steps() const { return steps_; }
  /// sigmas[i] as a 0-dim CPU tensor in the sigmas' dtype.
  at::Tensor sigma(int64_t i) const { return sigmas_[i]; }
  double value(int64_t i) const { return values_[static_cast<size_t>(i)]; }
  /// model(x, sigma * s_in): sigma [B] on x's device in x's dtype.
  at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma) const;
  void report(int64_t i, const at::Tensor& x, const at::Tensor& denoised) const;
  /// noise(sigma, sigma_next), checked to be shaped as x and moved to x's device and dtype.
  at::Tensor draw(const NoiseFn& noise, const at::Tensor& sigma, const at::Tensor& sigma_next,
                  const at::Tensor& x) const;

 private:
  std::string name_;
  const DenoiseFn& model_;
  const StepCallback& cb_;
  at::Tensor sigmas_;  // [steps + 1] CPU
  std::vector<double> values_;
  at::Tensor s_in_;  // [B] ones, x's options
  int64_t steps_ = 0;
};

/// k-diffusion to_d: the Karras ODE derivative (x - denoised) / sigma.
inline at::Tensor to_d(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor& denoised) {
  return (x - denoised) / sigma;
}

/// k-diffusion t_fn / sigma_fn of the DPM-Solver samplers: t = -log sigma.
inline at::Tensor t_fn(const at::Tensor& sigma) { return sigma.log().neg(); }
inline at::Tensor sigma_fn(const at::Tensor& t) { return t.neg().exp(); }

struct AncestralStep {
  at::Tensor down, up;  // 0-dim
};
/// k-diffusion get_ancestral_step(sigma_from, sigma_to, eta): the deterministic target sigma_down and
/// the noise sigma_up with sigma_down^2 + sigma_up^2 = sigma_to^2 (sigma_up capped at sigma_to).
AncestralStep ancestral_step(const at::Tensor& sigma_from, const at::Tensor& sigma_to, double eta);

inline bool is_zero(const at::Tensor& scalar) { return scalar.item<double>() == 0.0; }

}  // namespace ls::sample::samplers_detail
