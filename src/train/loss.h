// kohya's diffusion training loss for SDXL LoRAs: the elementwise loss (l2, l1, huber, smooth_l1 with
// kohya's scheduled huber_c), the alpha / conditioning mask, prior (loss) weights, and the timestep
// weights (min-SNR-gamma, v-prediction scaling, v-prediction-like loss, debiased estimation). References: kohya-ss/sd-scripts library/custom_train_functions.py (apply_snr_weight,
// scale_v_prediction_loss_like_noise_prediction, add_v_prediction_like_loss, apply_debiased_estimation,
// get_snr_scale, apply_masked_loss), library/train_util.py
// (get_huber_threshold_if_needed, conditional_loss) and train_network.py (process_batch,
// post_process_loss). The training noise is train/train_noise.h.
#pragma once

#include <string>

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

enum class LossType { kL2, kL1, kHuber, kSmoothL1 };
enum class HuberSchedule { kConstant, kExponential, kSnr };
/// kohya's --loss_type / --huber_schedule names; anything else is refused listing the names.
LossType parse_loss_type(const std::string& name);
HuberSchedule parse_huber_schedule(const std::string& name);

/// What kohya's loss options say (train_util.add_training_arguments, custom_train_functions).
struct LossOptions {
  LossType type = LossType::kL2;
  HuberSchedule huber_schedule = HuberSchedule::kSnr;  // kohya's default
  double huber_c = 0.1, huber_scale = 1.0;
  double min_snr_gamma = 0;  // 0 = off
  bool v_prediction = false;  // the target is the velocity (kohya --v_parameterization)
  bool scale_v_pred_loss_like_noise_pred = false;
  double v_pred_like_loss = 0;  // 0 = off
  bool debiased_estimation = false;
};

/// kohya get_huber_threshold_if_needed: huber_c per sample [B] float32 for huber / smooth_l1
/// (constant: c * scale; exponential: exp(t * log(c) / T) * scale; snr: (1 - c) / (1 + sigma_t)^2 + c,
/// without the scale, as kohya), undefined for l1 / l2.
at::Tensor huber_threshold(const LossOptions& options, const at::Tensor& t, const models::NoiseSchedule& schedule);

/// kohya conditional_loss(reduction="none"): the elementwise loss of pred against target; huber_c [B]
/// (huber / smooth_l1 only) broadcast over the other dims.
at::Tensor elementwise_loss(const at::Tensor& pred, const at::Tensor& target, LossType type,
                            const at::Tensor& huber_c);

/// kohya apply_masked_loss: loss [B, C, h, w] times mask [B, 1, H, W] (0..1, at image resolution)
/// resized to [h, w] by area interpolation.
at::Tensor apply_loss_mask(const at::Tensor& loss, const at::Tensor& mask);

/// kohya post_process_loss on per-sample losses [B]: min-SNR-gamma, scale_v_pred_loss_like_noise_pred,
/// v_pred_like_loss and debiased estimation, in kohya's order.
at::Tensor timestep_weighted(const at::Tensor& per_sample, const at::Tensor& t, const models::NoiseSchedule& schedule,
                             const LossOptions& options);

struct LossParts {
  at::Tensor loss;        // [] the value to back-propagate: per_sample.mean()
  at::Tensor per_sample;  // [B] weighted per-sample losses (loss_weights and min-SNR applied)
};

/// The training loss as kohya's train_network.py process_batch computes it: the elementwise loss in
/// float32 (float64 inputs stay float64), times the mask when one is given ([B, 1, H, W]), mean over
/// all but the batch dim -> [B], times loss_weights [B] (1, or prior_loss_weight for regularisation
/// images), times the timestep weights of t [B] (int64), then the batch mean. target is the noise
/// (epsilon prediction) or the velocity (options.v_prediction): the caller makes it.
LossParts diffusion_loss(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& loss_weights,
                         const at::Tensor& t, const models::NoiseSchedule& schedule, const LossOptions& options,
                         const at::Tensor& mask = {});

/// NoiseSchedule::snr at timesteps t [B], on t's device.
at::Tensor snr_at(const models::NoiseSchedule& schedule, const at::Tensor& t);

}  // namespace ls::train
