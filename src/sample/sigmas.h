// Sigma schedules for the k-diffusion samplers: k-diffusion's get_sigmas_karras / _exponential and
// DiscreteSchedule (get_sigmas, sigma_to_t, t_to_sigma) (crowsonkb/k-diffusion k_diffusion/sampling.py,
// external.py), A1111's schedule types (stable-diffusion-webui modules/sd_schedulers.py) and the DDIM
// timestep spacing of A1111's timestep samplers (modules/sd_samplers_timesteps.py).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "models/noise_schedule.h"

namespace ls::sample {

// Every schedule below is a float32 CPU tensor, descending, computed with the reference's own torch
// ops in float32 (linspace, pow, exp, the log-sigma interpolation), so the ones the fixtures cover are
// bit-exact: karras_sigmas (karras_10/25), discrete_sigmas (discrete_10/25), sigma_to_t (karras_*_t).

/// Karras et al. (2022), k-diffusion get_sigmas_karras: n sigmas from sigma_max down to sigma_min,
/// then a trailing 0: [n + 1].
at::Tensor karras_sigmas(int64_t n, double sigma_min, double sigma_max, double rho = 7.0);

/// k-diffusion get_sigmas_exponential: n sigmas evenly spaced in log sigma, then 0: [n + 1].
at::Tensor exponential_sigmas(int64_t n, double sigma_min, double sigma_max);

/// k-diffusion DiscreteSchedule.get_sigmas(n) (A1111 "Uniform", and "Automatic" for samplers without a
/// default): t = linspace(999, 0, n), t_to_sigma(t), then 0: [n + 1].
at::Tensor discrete_sigmas(const models::NoiseSchedule& schedule, int64_t n);

/// A1111 normal_scheduler ("Normal"; sgm=true is "SGM Uniform"): timesteps from sigma_to_t(sigma_max)
/// to sigma_to_t(sigma_min) (n of them, or n + 1 with the last dropped when sgm), each mapped back with
/// t_to_sigma, then 0: [n + 1].
at::Tensor normal_sigmas(const models::NoiseSchedule& schedule, int64_t n, bool sgm = false);

/// A1111 simple_scheduler ("Simple"): every (1000 / n)-th table sigma from the top, then 0: [n + 1].
at::Tensor simple_sigmas(const models::NoiseSchedule& schedule, int64_t n);

/// A1111 ddim_scheduler (the "DDIM" schedule type for k-diffusion samplers): table sigmas at
/// t = 1, 1 + 1000/n, ... below 1000, descending, then 0: [ceil(999 / (1000/n)) + 1].
at::Tensor ddim_schedule_sigmas(const models::NoiseSchedule& schedule, int64_t n);

/// The timesteps A1111's DDIM sampler visits: clip(range(0, T, T / steps) + 1, 0, T - 1), ascending
/// int64 CPU. steps = 10 gives [1, 101, ..., 901]; steps = 30 gives 31 entries (33-spaced). The
/// sampler evaluates the model at all but the first and stops at the first.
at::Tensor ddim_timesteps(const models::NoiseSchedule& schedule, int64_t steps);

/// The DDIM sampler's sigmas: the table sigmas at ddim_timesteps, descending, WITHOUT a trailing 0
/// (A1111's DDIM ends at timestep 1, sigma ~ 0.041): [len(ddim_timesteps)], float32 CPU.
at::Tensor ddim_sigmas(const models::NoiseSchedule& schedule, int64_t steps);

/// k-diffusion DiscreteSchedule.sigma_to_t: the fractional timestep whose interpolated log sigma
/// equals log(sigma) (clamped to [0, T - 1]), or with quantize the nearest table index (int64).
/// Any shape and device; computed with the float32 log-sigma table moved to sigma's device.
at::Tensor sigma_to_t(const models::NoiseSchedule& schedule, const at::Tensor& sigma, bool quantize = false);

/// k-diffusion DiscreteSchedule.t_to_sigma: exp of the log sigmas interpolated linearly at t
/// (float32, t's shape and device).
at::Tensor t_to_sigma(const models::NoiseSchedule& schedule, const at::Tensor& t);

/// The table's ends as doubles (k-diffusion's sigma_min / sigma_max .item()).
double schedule_sigma_min(const models::NoiseSchedule& schedule);
double schedule_sigma_max(const models::NoiseSchedule& schedule);

}  // namespace ls::sample
