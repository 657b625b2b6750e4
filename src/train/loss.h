// kohya's diffusion training loss for SDXL LoRAs: per-sample MSE, prior (loss) weights, min-SNR-gamma
// and debiased-estimation weights, and noise offset. References: kohya-ss/sd-scripts
// library/custom_train_functions.py (apply_snr_weight, apply_debiased_estimation,
// get_snr_scale, apply_noise_offset) and train_network.py (the loss lines of the training step).
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "models/noise_schedule.h"

namespace ls::train {

/// min-SNR-gamma weight min(snr, gamma) / snr (v-prediction: / (snr + 1)), float32 [B]; snr_t [B]
/// is NoiseSchedule::snr at the batch's timesteps.
at::Tensor min_snr_weight(const at::Tensor& snr_t, double gamma, bool v_prediction = false);
/// Debiased estimation weight 1 / sqrt(min(snr, 1000)) (v-prediction: 1 / (min(snr, 1000) + 1)).
at::Tensor debiased_weight(const at::Tensor& snr_t, bool v_prediction = false);
/// kohya's --scale_v_pred_loss_like_noise_pred factor min(snr, 1000) / (min(snr, 1000) + 1).
at::Tensor v_pred_like_noise_pred_scale(const at::Tensor& snr_t);

/// kohya apply_noise_offset: noise + offset * randn(B, C, 1, 1), the randn drawn (float32) from
/// `generator` on its device. With adaptive_noise_scale != 0 the offset is per (b, c):
/// max(0, noise_offset + adaptive_noise_scale * |mean_{H,W}(latents)|). noise_offset == 0 returns
/// `noise` untouched and draws nothing (kohya skips the call then). latents, noise [B, C, H, W].
at::Tensor apply_noise_offset(const at::Tensor& latents, const at::Tensor& noise, double noise_offset,
                              double adaptive_noise_scale, at::Generator generator);

struct LossParts {
  at::Tensor loss;        // [] the value to back-propagate: per_sample.mean()
  at::Tensor per_sample;  // [B] weighted per-sample losses (loss_weights and min-SNR applied)
};

/// The training loss as kohya's train_network.py computes it for epsilon prediction: elementwise
/// MSE in float32 (float64 inputs stay float64), mean over all but the batch dim -> [B], times
/// loss_weights [B] (1, or prior_loss_weight for regularisation images), times the min-SNR weight
/// of t [B] (int64) when min_snr_gamma > 0, then the batch mean.
LossParts diffusion_loss(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& loss_weights,
                         const at::Tensor& t, const models::NoiseSchedule& schedule, double min_snr_gamma);

/// NoiseSchedule::snr at timesteps t [B], on t's device.
at::Tensor snr_at(const models::NoiseSchedule& schedule, const at::Tensor& t);

}  // namespace ls::train
