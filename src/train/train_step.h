// One training step's objective, shared by the trainer and `lorastudio debug train-step` (the
// parity interface against kohya): noisy latents from the DDPM forward process (with input
// perturbation noise, if any), the UNet's prediction in the base dtype, its target (the noise, or
// the velocity for v-parameterization), kohya's loss (train_network.py process_batch).
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include "models/sdxl_unet.h"
#include "models/noise_schedule.h"
#include "train/loss.h"

namespace ls::train {

struct StepInputs {
  at::Tensor latents;       // [B, 4, h, w] float32, already multiplied by the VAE scale factor
  at::Tensor noise;         // [B, 4, h, w] float32 (noise offset, if any, already added)
  at::Tensor timesteps;     // [B] int64
  at::Tensor context;       // [B, 77*k, 2048]
  at::Tensor y;             // [B, 2816] pooled text embedding + size embeddings
  at::Tensor loss_weights;  // [B] 1, or prior_loss_weight for regularisation images
  at::Tensor ip_noise;      // [B, 4, h, w] or undefined: ip_noise_gamma's extra input noise
  at::Tensor mask;          // [B, 1, H, W] loss mask (masked_loss) or undefined
};

/// Forward and loss, no backward. The UNet runs in `base_dtype`; the loss is float32.
LossParts step_loss(models::SdxlUnet& unet, const models::NoiseSchedule& schedule, const StepInputs& in,
                    c10::ScalarType base_dtype, const LossOptions& loss);

/// The 2-norm of all defined gradients of `params` (the norm of the per-tensor norms, as
/// torch.nn.utils.clip_grad_norm_), a 0-d tensor on their device: no host read.
at::Tensor grad_norm(const std::vector<at::Tensor>& params);

/// clip_grad_norm_: every gradient times min(1, max_norm / (norm + 1e-6)); returns the norm
/// before clipping as a 0-d tensor, without the host read of libtorch's version (which returns a
/// double and so waits for the device every step).
at::Tensor clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace ls::train
