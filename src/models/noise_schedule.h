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

  /// kohya's --zero_terminal_snr (custom_train_functions.fix_noise_scheduler_betas_for_zero_terminal_snr,
  /// arXiv 2305.08891): sqrt(acp) shifted so the last timestep is pure noise and rescaled so the first
  /// keeps its value, back to betas, acp = cumprod(1 - betas), all in float32 as the reference. `snr`
  /// stays the original schedule's, as kohya computes all_snr before the fix (min-SNR and debiased
  /// weights see the unfixed SNR). `sigmas` / `log_sigmas` are for sampling: the last acp is set to
  /// 4.8973451890853435e-08 (A1111's and ComfyUI's rescale_zero_terminal_snr), a finite sigma_max of
  /// ~4500 instead of infinity.
  NoiseSchedule zero_terminal_snr() const;
  /// The schedule a model was trained on: sdxl(), rescaled when zero_terminal_snr.
  static NoiseSchedule sdxl_trained(bool zero_terminal_snr);
  bool zero_terminal = false;  // made by zero_terminal_snr()

  int64_t num_timesteps() const { return betas.size(0); }

  /// DDPM forward process sqrt(acp_t) * x0 + sqrt(1 - acp_t) * noise for per-sample t [B] int64;
  /// the table is cast to x0's dtype and device first, as diffusers does. x0, noise [B, ...].
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const;

  /// diffusers DDPMScheduler.get_velocity, the v-prediction target: sqrt(acp_t) * noise -
  /// sqrt(1 - acp_t) * x0, the table in x0's dtype. Shapes as add_noise.
  at::Tensor velocity(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const;

  /// kohya: uniform integers in [min_timestep, max_timestep), one per sample ([B] int64 on the
  /// generator's device); min_timestep == max_timestep gives that value for every sample.
  at::Tensor sample_timesteps(int64_t batch, int64_t min_timestep, int64_t max_timestep,
                              at::Generator generator) const;
};

}  // namespace ls::models
