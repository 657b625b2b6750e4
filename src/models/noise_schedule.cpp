// DDPM schedule tables, forward process and timestep draw; see noise_schedule.h for the references.
// Every table is computed in float32 with the reference's own torch ops (not in double and rounded),
// because that is what makes them bit-identical to what kohya trains with.
#include "models/noise_schedule.h"

#include <cmath>

#include <ATen/ATen.h>

#include "core/error.h"

namespace ls::models {

NoiseSchedule NoiseSchedule::sdxl(int64_t steps, double beta_start, double beta_end) {
  LS_CHECK(steps >= 2, "noise schedule: need at least 2 timesteps, got ", steps);
  LS_CHECK(beta_start > 0 && beta_end > beta_start && beta_end < 1,
           "noise schedule: need 0 < beta_start < beta_end < 1, got ", beta_start, " and ", beta_end);
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(at::kCPU);
  NoiseSchedule s;
  // diffusers "scaled_linear": the bounds' square roots are Python floats (pow(x, 0.5) in double).
  s.betas = at::linspace(std::pow(beta_start, 0.5), std::pow(beta_end, 0.5), steps, f32).pow(2);  // [T]
  const auto alphas = 1.0 - s.betas;
  s.alphas_cumprod = at::cumprod(alphas, 0);
  // kohya's all_snr squares the ratio of square roots; acp / (1 - acp) rounds differently.
  const auto alpha = at::sqrt(s.alphas_cumprod);
  const auto sigma = at::sqrt(1.0 - s.alphas_cumprod);
  s.snr = (alpha / sigma).pow(2);
  s.sigmas = ((1 - s.alphas_cumprod) / s.alphas_cumprod).pow(0.5);
  s.log_sigmas = s.sigmas.log();
  return s;
}

namespace {

// [B] -> [B, 1, ..., 1] with as many dims as `like` (diffusers' flatten + unsqueeze loop).
at::Tensor per_sample(const at::Tensor& v, const at::Tensor& like) {
  std::vector<int64_t> shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = v.numel();
  return v.flatten().view(shape);
}

}  // namespace

namespace {

// diffusers' add_noise / get_velocity coefficients sqrt(acp_t) and sqrt(1 - acp_t), each [B, 1, ...]
// like x0, from the table cast to x0's dtype and device first, as diffusers does.
std::pair<at::Tensor, at::Tensor> schedule_coefficients(const NoiseSchedule& s, const at::Tensor& x0,
                                                        const at::Tensor& noise, const at::Tensor& t,
                                                        const char* what) {
  LS_CHECK(x0.dim() >= 1 && x0.sizes() == noise.sizes(), what, ": latents ", x0.sizes(), " and noise ",
           noise.sizes(), " must have the same shape");
  LS_CHECK(t.dim() == 1 && t.size(0) == x0.size(0), what, ": need one timestep per sample ([", x0.size(0),
           "]), got ", t.sizes());
  LS_CHECK(!at::isFloatingType(t.scalar_type()), what, ": timesteps must be integers, got ", t.scalar_type());
  const auto acp = s.alphas_cumprod.to(x0.device()).to(x0.scalar_type());
  const auto idx = t.to(x0.device()).to(at::kLong);
  if (idx.numel() > 0) {
    const auto lo = idx.min().item<int64_t>(), hi = idx.max().item<int64_t>();
    LS_CHECK(lo >= 0 && hi < s.num_timesteps(), what, ": timesteps must lie in [0, ", s.num_timesteps(), "), got ",
             lo, "..", hi);
  }
  const auto acp_t = acp.index_select(0, idx);  // [B]
  return {per_sample(acp_t.pow(0.5), x0), per_sample((1 - acp_t).pow(0.5), x0)};
}

}  // namespace

at::Tensor NoiseSchedule::add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const {
  const auto [sqrt_alpha, sqrt_one_minus] = schedule_coefficients(*this, x0, noise, t, "add_noise");
  return sqrt_alpha * x0 + sqrt_one_minus * noise;  // [B, ...]
}

at::Tensor NoiseSchedule::velocity(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const {
  const auto [sqrt_alpha, sqrt_one_minus] = schedule_coefficients(*this, x0, noise, t, "velocity");
  return sqrt_alpha * noise - sqrt_one_minus * x0;  // [B, ...]
}

NoiseSchedule NoiseSchedule::sdxl_trained(bool zero_terminal_snr) {
  const NoiseSchedule s = sdxl();
  return zero_terminal_snr ? s.zero_terminal_snr() : s;
}

NoiseSchedule NoiseSchedule::zero_terminal_snr() const {
  LS_CHECK(!zero_terminal, "noise schedule: zero terminal SNR is already enforced");
  // kohya's enforce_zero_terminal_snr, op for op in float32.
  const auto alphas_bar_sqrt = at::cumprod(1 - betas, 0).sqrt();                 // [T]
  const auto first = alphas_bar_sqrt[0].clone(), last = alphas_bar_sqrt[-1].clone();
  const auto shifted = (alphas_bar_sqrt - last) * (first / (first - last));       // [T], last = 0
  const auto alphas_bar = shifted.pow(2);
  const auto alphas = at::cat({alphas_bar.slice(0, 0, 1), alphas_bar.slice(0, 1) / alphas_bar.slice(0, 0, -1)});
  NoiseSchedule z;
  z.betas = 1 - alphas;
  z.alphas_cumprod = at::cumprod(1 - z.betas, 0);
  z.snr = snr;  // kohya: all_snr is computed before the fix
  // Sampling: A1111's / ComfyUI's finite stand-in for the terminal alpha_bar of 0.
  auto acp = z.alphas_cumprod.clone();
  acp[-1] = 4.8973451890853435e-08;
  z.sigmas = ((1 - acp) / acp).pow(0.5);
  z.log_sigmas = z.sigmas.log();
  z.zero_terminal = true;
  return z;
}

at::Tensor NoiseSchedule::sample_timesteps(int64_t batch, int64_t min_timestep, int64_t max_timestep,
                                           at::Generator generator) const {
  LS_CHECK(generator.defined(), "sample_timesteps: a generator is required");
  LS_CHECK(batch >= 0, "sample_timesteps: batch must be >= 0, got ", batch);
  LS_CHECK(0 <= min_timestep && min_timestep <= max_timestep && max_timestep <= num_timesteps(),
           "timesteps: need 0 <= min_timestep <= max_timestep <= ", num_timesteps(), ", got min ",
           min_timestep, " and max ", max_timestep);
  const auto opts = at::TensorOptions().dtype(at::kLong).device(generator.device());
  if (min_timestep == max_timestep) {
    // kohya: torch.full((b,), max_timestep); max_timestep == T would index past the table.
    LS_CHECK(max_timestep < num_timesteps(), "timesteps: min_timestep == max_timestep must be below ",
             num_timesteps(), ", got ", max_timestep);
    return at::full({batch}, max_timestep, opts);
  }
  return at::randint(min_timestep, max_timestep, {batch}, generator, opts);  // [B]
}

}  // namespace ls::models
