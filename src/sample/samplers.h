// The k-diffusion samplers (crowsonkb/k-diffusion k_diffusion/sampling.py at 4601bf0853: sample_euler,
// _euler_ancestral, _heun, _dpm_2, _dpm_2_ancestral, _lms, _dpmpp_2s_ancestral, _dpmpp_sde, _dpmpp_2m,
// _dpmpp_2m_sde, _dpmpp_3m_sde), A1111's DDIM (stable-diffusion-webui modules/sd_samplers_timesteps_impl.py)
// restated in k-diffusion's x convention, and the A1111 sampler / schedule-type names
// (modules/sd_samplers_kdiffusion.py, sd_samplers_timesteps.py, sd_schedulers.py) over one DenoiseFn.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "sample/denoise_fn.h"
#include "models/noise_schedule.h"

namespace ls::sample {

/// Knobs of the stochastic samplers, with k-diffusion's (and A1111's) defaults.
struct SamplerOptions {
  double eta = 1.0;      // ancestral / SDE noise fraction (A1111 "Eta"; DDIM's own default is 0)
  double s_noise = 1.0;  // noise multiplier
  bool heun_solver = false;  // dpmpp_2m_sde: solver_type 'heun' instead of 'midpoint'
};

// Every sampler: x [B, ...] is the starting sample at sigmas[0] (for txt2img, unit noise * sigmas[0]);
// sigmas descending, any device and float dtype (the per-step scalars are computed in sigmas' dtype on
// the CPU, as k-diffusion does in the sigmas' dtype); noise may be empty for the deterministic ones;
// cb may be empty. Returns x at sigmas.back(). One step per adjacent pair of sigmas.
at::Tensor sample_euler(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const StepCallback& cb = {});
at::Tensor sample_euler_ancestral(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                                  const StepCallback& cb = {}, const SamplerOptions& opts = {});
at::Tensor sample_heun(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const StepCallback& cb = {});
at::Tensor sample_dpm_2(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const StepCallback& cb = {});
at::Tensor sample_dpm_2_ancestral(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                                  const StepCallback& cb = {}, const SamplerOptions& opts = {});
/// Linear multistep (order 4): coefficients integrate the Lagrange basis over [sigma_i, sigma_i+1]
/// exactly (k-diffusion uses scipy quad; both are exact for these cubics up to rounding).
at::Tensor sample_lms(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const StepCallback& cb = {},
                      int64_t order = 4);
at::Tensor sample_dpmpp_2s_ancestral(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas,
                                     const NoiseFn& noise, const StepCallback& cb = {},
                                     const SamplerOptions& opts = {});
/// DPM++ SDE with r = 1/2: two noise calls per step. k-diffusion's default noise here is a Brownian
/// tree (torchsde); the caller's NoiseFn replaces it.
at::Tensor sample_dpmpp_sde(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                            const StepCallback& cb = {}, const SamplerOptions& opts = {});
at::Tensor sample_dpmpp_2m(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const StepCallback& cb = {});
at::Tensor sample_dpmpp_2m_sde(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                               const StepCallback& cb = {}, const SamplerOptions& opts = {});
at::Tensor sample_dpmpp_3m_sde(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                               const StepCallback& cb = {}, const SamplerOptions& opts = {});
/// A1111's DDIM in the variance-exploding convention: x0 = D(x, sigma), eps = (x - x0) / sigma,
/// x_next = x0 + sigma_down * eps + sigma_up * noise with DDIM's
/// sigma_up = eta * sigma_next * sqrt(1 - sigma_next^2 / sigma^2), sigma_down = sqrt(sigma_next^2 - sigma_up^2).
/// That is A1111's VP update x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - s_t^2) eps + s_t noise divided
/// by sqrt(a_prev) (sigma^2 = (1 - a) / a). eta in [0, 1] (A1111 default 0: deterministic, noise unused).
/// Use ddim_sigmas() for A1111's timesteps; a trailing 0 ends on x0.
at::Tensor sample_ddim(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                       const StepCallback& cb = {}, double eta = 0.0);

/// The double coefficients sample_lms uses at step i (order min(i + 1, order)); j multiplies the
/// derivative of step i - j. float32_sigmas: the sigmas are float32 values (as k-diffusion's numpy copy).
std::vector<double> lms_coefficients(const std::vector<double>& sigmas, int64_t i, int64_t order,
                                     bool float32_sigmas = true);

// ---- Named samplers (A1111) ----

enum class SamplerKind {
  kEuler, kEulerAncestral, kHeun, kDpm2, kDpm2Ancestral, kLms, kDpmpp2sAncestral, kDpmppSde, kDpmpp2m,
  kDpmpp2mSde, kDpmpp3mSde, kDdim,
};
/// A1111's "Schedule type". kAutomatic never survives parse_sampler (it resolves to the sampler's default).
enum class ScheduleKind { kAutomatic, kUniform, kKarras, kExponential, kNormal, kSgmUniform, kSimple, kDdim };

struct SamplerSpec {
  SamplerKind kind = SamplerKind::kEulerAncestral;
  ScheduleKind schedule = ScheduleKind::kUniform;  // resolved
  std::string label;           // A1111 sampler label, e.g. "DPM++ 2M" (no schedule suffix)
  std::string schedule_label;  // A1111 schedule label, e.g. "Karras"; "" for DDIM (its own timesteps)
  bool discard_penultimate_sigma = false;  // A1111 option of DPM2, DPM2 a, DPM++ 3M SDE
  double eta = 1.0;                        // A1111 defaults: 1 for ancestral / SDE, 0 for DDIM
  double s_noise = 1.0;
  bool heun_solver = false;  // "DPM++ 2M SDE Heun"
};

/// Whether run_sampler will call the NoiseFn: the ancestral samplers and DPM++ SDE always (k-diffusion
/// draws even at eta 0), DPM++ 2M/3M SDE when eta != 0, DDIM when eta > 0.
bool uses_noise(const SamplerSpec& spec);

/// Resolves A1111 sampler names ("Euler a", "DPM++ 2M", legacy "DPM++ 2M Karras"), A1111 aliases
/// ("k_dpmpp_2m_ka") and k-diffusion names ("euler_ancestral", "dpmpp_2m"), case-insensitively, plus
/// A1111's separate schedule type ("Automatic", "Uniform", "Karras", "Exponential", "Normal",
/// "SGM Uniform", "Simple", "DDIM"; "" = Automatic). "Automatic" takes A1111 1.10's default for the
/// sampler (Karras for DPM++ 2M, DPM++ SDE, DPM++ 2S a, DPM2, DPM2 a; Exponential for DPM++ 2M SDE and
/// 3M SDE; Uniform = the model's discrete schedule for Euler, Euler a, Heun, LMS). A schedule both in the
/// name and given separately must agree. Unknown names: ls::Error listing the valid ones.
SamplerSpec parse_sampler(const std::string& name, const std::string& schedule = "");

/// All sampler labels parse_sampler accepts (A1111 spelling), and the schedule labels.
std::vector<std::string> sampler_names();
std::vector<std::string> schedule_names();

/// The sigmas A1111 would use for spec at `steps` on this schedule (float32 CPU): the schedule type's
/// sigmas with A1111's sigma_min / sigma_max = the table's ends and Karras rho 7; with
/// discard_penultimate_sigma, steps + 1 sigmas with the next-to-last dropped; for DDIM ddim_sigmas().
at::Tensor sampler_sigmas(const SamplerSpec& spec, const models::NoiseSchedule& schedule, int64_t steps);

/// Runs spec's sampler (with spec.eta / s_noise) from x at sigmas[0].
at::Tensor run_sampler(const SamplerSpec& spec, const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas,
                       const NoiseFn& noise, const StepCallback& cb = {});

}  // namespace ls::sample
