// The DDPM noise schedule kohya trains SDXL with: diffusers DDPMScheduler(scaled_linear,
// 0.00085 -> 0.012, 1000 steps) (diffusers src/diffusers/schedulers/scheduling_ddpm.py), kohya's all_snr
// (sd-scripts library/custom_train_functions.py prepare_scheduler_for_custom_training), k-diffusion's
// sigmas, the forward process (DDPMScheduler.add_noise) and kohya's timestep draw
// (library/train_util.py get_timesteps). It belongs to the model (SDXL was trained on it): training
// draws its timesteps and noise from it, sampling turns it into sigmas.
#pragma once

#include <cstdint>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace ls::models {

/// kohya's DDPMScheduler(scaled_linear, 0.00085 -> 0.012, 1000 steps): float32 tensors computed with
/// the same ops as the reference (torch linspace float32 of the sqrt bounds, squared; torch cumprod)
/// so they are bit-exact with it. Index = timestep t.
struct NoiseSchedule {
  at::Tensor betas;           // [T] float32, CPU
  at::Tensor alphas_cumprod;  // [T] float32, CPU
  at::Tensor snr;             // [T] float32, CPU: (sqrt(acp) / sqrt(1 - acp))^2, kohya's all_snr
  at::Tensor sigmas;          // [T] float32, CPU: sqrt((1 - acp) / acp), ascending (k-diffusion)
  at::Tensor log_sigmas;      // [T] float32, CPU

  static NoiseSchedule sdxl(int64_t steps = 1000, double beta_start = 0.00085, double beta_end = 0.012);

  int64_t num_timesteps() const { return betas.size(0); }

  /// DDPM forward process sqrt(acp_t) * x0 + sqrt(1 - acp_t) * noise for per-sample t [B] int64;
  /// the table is cast to x0's dtype and device first, as diffusers does. x0, noise [B, ...].
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const;

  /// kohya: uniform integers in [min_timestep, max_timestep), one per sample ([B] int64 on the
  /// generator's device); min_timestep == max_timestep gives that value for every sample.
  at::Tensor sample_timesteps(int64_t batch, int64_t min_timestep, int64_t max_timestep,
                              at::Generator generator) const;
};

}  // namespace ls::models
