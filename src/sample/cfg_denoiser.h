// The SDXL UNet as a k-diffusion denoiser with classifier-free guidance: k-diffusion
// external.py DiscreteEpsDDPMDenoiser (c_in = 1/sqrt(sigma^2 + 1), t from sigma by log-sigma
// interpolation, denoised = x - sigma * eps) or, for v-prediction models, DiscreteVDDPMDenoiser
// (same c_in; denoised = x / (sigma^2 + 1) - v * sigma / sqrt(sigma^2 + 1)), wrapped as A1111's CFGDenoiser
// (modules/sd_samplers_cfg_denoiser.py: uncond + (cond - uncond) * scale on the denoised images).
#pragma once

#include <ATen/core/Tensor.h>

#include "models/sdxl_unet.h"
#include "models/noise_schedule.h"
#include "sample/samplers.h"

namespace ls::sample {

/// What the UNet is conditioned on for one prompt: context [1, L, 2048], y [1, 2816].
struct UnetConditioning {
  at::Tensor context;
  at::Tensor y;
};

/// denoised(x, sigma) for x [B, 4, h, w], sigma [B]: cond and uncond run as one UNet batch of 2B
/// (the contexts must have the same length); with scale == 1 only cond runs (same result,
/// half the work). cond/uncond are broadcast over the batch.
DenoiseFn cfg_denoiser(models::SdxlUnet unet, const models::NoiseSchedule& schedule, UnetConditioning cond,
                       UnetConditioning uncond, double scale, bool v_prediction = false);

/// The plain eps denoiser (no guidance) for one conditioning, the building block of the above.
at::Tensor eps_denoise(models::SdxlUnetImpl& unet, const models::NoiseSchedule& schedule, const at::Tensor& x,
                       const at::Tensor& sigma, const at::Tensor& context, const at::Tensor& y);
/// k-diffusion's v-prediction output scalings: x0 = x / (sigma^2 + 1) - v * sigma / sqrt(sigma^2 + 1)
/// for x [B, ...] at noise levels sigma [B] and the model's velocity v (shaped as x).
at::Tensor v_to_denoised(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor& v);
/// The v-prediction denoiser (k-diffusion DiscreteVDDPMDenoiser, sigma_data = 1) for one conditioning.
at::Tensor v_denoise(models::SdxlUnetImpl& unet, const models::NoiseSchedule& schedule, const at::Tensor& x,
                     const at::Tensor& sigma, const at::Tensor& context, const at::Tensor& y);

}  // namespace ls::sample
