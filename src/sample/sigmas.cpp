// Sigma schedules; see sigmas.h for the references. Each function repeats the reference's float32
// torch ops in the same order (a vectorised exp or pow rounds differently from a per-element one,
// so A1111's per-timestep loops stay loops here).
#include "sample/sigmas.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/ATen.h>

#include "core/error.h"

namespace ls::sample {

// Named, not anonymous: unity builds put several sample/ sources into one translation unit.
namespace sigmas_detail {  // qualified below: a using-directive would leak into the unity batch

const auto kF32Cpu = at::TensorOptions().dtype(at::kFloat).device(at::kCPU);

// k-diffusion append_zero.
at::Tensor append_zero(const at::Tensor& sigmas) {
  return at::cat({sigmas, at::zeros({1}, sigmas.options())});
}

at::Tensor from_values(std::vector<float> values) {
  values.push_back(0.0f);
  return at::tensor(values, kF32Cpu);
}

void check_steps(const char* what, int64_t n) {
  LS_CHECK(n >= 1, what, ": need at least 1 step, got ", n);
}

}  // namespace sigmas_detail

double schedule_sigma_min(const models::NoiseSchedule& schedule) { return schedule.sigmas[0].item<double>(); }

double schedule_sigma_max(const models::NoiseSchedule& schedule) {
  return schedule.sigmas[schedule.num_timesteps() - 1].item<double>();
}

at::Tensor karras_sigmas(int64_t n, double sigma_min, double sigma_max, double rho) {
  sigmas_detail::check_steps("karras sigmas", n);
  LS_CHECK(0 < sigma_min && sigma_min <= sigma_max && rho > 0, "karras sigmas: need 0 < sigma_min <= sigma_max ",
           "and rho > 0, got sigma_min ", sigma_min, ", sigma_max ", sigma_max, ", rho ", rho);
  const auto ramp = at::linspace(0, 1, n, sigmas_detail::kF32Cpu);  // [n]
  // Python floats, as k-diffusion's `sigma ** (1 / rho)`.
  const double min_inv_rho = std::pow(sigma_min, 1 / rho);
  const double max_inv_rho = std::pow(sigma_max, 1 / rho);
  return sigmas_detail::append_zero(at::pow(ramp * (min_inv_rho - max_inv_rho) + max_inv_rho, rho));  // [n + 1]
}

at::Tensor exponential_sigmas(int64_t n, double sigma_min, double sigma_max) {
  sigmas_detail::check_steps("exponential sigmas", n);
  LS_CHECK(0 < sigma_min && sigma_min <= sigma_max, "exponential sigmas: need 0 < sigma_min <= sigma_max, got ",
           sigma_min, " and ", sigma_max);
  const auto log_sigmas = at::linspace(std::log(sigma_max), std::log(sigma_min), n, sigmas_detail::kF32Cpu);  // [n]
  return sigmas_detail::append_zero(log_sigmas.exp());  // [n + 1]
}

at::Tensor t_to_sigma(const models::NoiseSchedule& schedule, const at::Tensor& t) {
  const auto tf = t.to(at::kFloat);
  const auto log_sigmas = schedule.log_sigmas.to(tf.device());
  const auto low_idx = tf.floor().to(at::kLong), high_idx = tf.ceil().to(at::kLong);
  const auto w = tf.frac();
  const auto low = log_sigmas.index_select(0, low_idx.flatten()).view(tf.sizes());
  const auto high = log_sigmas.index_select(0, high_idx.flatten()).view(tf.sizes());
  return ((1 - w) * low + w * high).exp();
}

at::Tensor sigma_to_t(const models::NoiseSchedule& schedule, const at::Tensor& sigma, bool quantize) {
  const auto log_sigmas = schedule.log_sigmas.to(sigma.device());  // [T]
  const auto log_sigma = sigma.flatten().log();                        // [N]
  const auto dists = log_sigma - log_sigmas.unsqueeze(1);              // [T, N]
  if (quantize) return dists.abs().argmin(0).view(sigma.sizes());
  // The last table entry at or below log(sigma); clamped so that high_idx stays in the table.
  const auto low_idx = dists.ge(0).cumsum(0).argmax(0).clamp_max(schedule.num_timesteps() - 2);  // [N]
  const auto high_idx = low_idx + 1;
  const auto low = log_sigmas.index_select(0, low_idx), high = log_sigmas.index_select(0, high_idx);
  const auto w = ((low - log_sigma) / (low - high)).clamp(0, 1);
  return ((1 - w) * low_idx + w * high_idx).view(sigma.sizes());
}

at::Tensor discrete_sigmas(const models::NoiseSchedule& schedule, int64_t n) {
  sigmas_detail::check_steps("discrete sigmas", n);
  const auto t = at::linspace(static_cast<double>(schedule.num_timesteps() - 1), 0, n, sigmas_detail::kF32Cpu);  // [n]
  return sigmas_detail::append_zero(t_to_sigma(schedule, t));
}

at::Tensor normal_sigmas(const models::NoiseSchedule& schedule, int64_t n, bool sgm) {
  sigmas_detail::check_steps(sgm ? "sgm_uniform sigmas" : "normal sigmas", n);
  // torch.tensor(sigma.item()) is float32 again, so these are the table's own values.
  const auto start = sigma_to_t(schedule, at::scalar_tensor(schedule_sigma_max(schedule), sigmas_detail::kF32Cpu));
  const auto end = sigma_to_t(schedule, at::scalar_tensor(schedule_sigma_min(schedule), sigmas_detail::kF32Cpu));
  const auto timesteps =
      at::linspace(start.item<double>(), end.item<double>(), sgm ? n + 1 : n, sigmas_detail::kF32Cpu);
  std::vector<float> sigmas;
  for (int64_t i = 0; i < n; ++i) sigmas.push_back(t_to_sigma(schedule, timesteps[i]).item<float>());
  return sigmas_detail::from_values(std::move(sigmas));
}

at::Tensor simple_sigmas(const models::NoiseSchedule& schedule, int64_t n) {
  sigmas_detail::check_steps("simple sigmas", n);
  const int64_t T = schedule.num_timesteps();
  const double stride = static_cast<double>(T) / static_cast<double>(n);
  const auto table = schedule.sigmas.contiguous();
  const float* s = table.data_ptr<float>();
  std::vector<float> sigmas;
  for (int64_t i = 0; i < n; ++i) sigmas.push_back(s[T - 1 - static_cast<int64_t>(static_cast<double>(i) * stride)]);
  return sigmas_detail::from_values(std::move(sigmas));
}

at::Tensor ddim_schedule_sigmas(const models::NoiseSchedule& schedule, int64_t n) {
  sigmas_detail::check_steps("ddim schedule sigmas", n);
  const int64_t T = schedule.num_timesteps();
  const int64_t stride = std::max<int64_t>(T / n, 1);
  const auto table = schedule.sigmas.contiguous();
  const float* s = table.data_ptr<float>();
  std::vector<float> sigmas;
  for (int64_t t = 1; t < T; t += stride) sigmas.push_back(s[t]);
  std::reverse(sigmas.begin(), sigmas.end());
  return sigmas_detail::from_values(std::move(sigmas));
}

at::Tensor ddim_timesteps(const models::NoiseSchedule& schedule, int64_t steps) {
  const int64_t T = schedule.num_timesteps();
  LS_CHECK(steps >= 2 && steps <= T, "DDIM: steps must lie in [2, ", T, "], got ", steps,
           " (A1111's spacing gives no model call for 1 step)");
  const int64_t stride = T / steps;
  std::vector<int64_t> timesteps;
  for (int64_t t = 0; t < T; t += stride) timesteps.push_back(std::clamp<int64_t>(t + 1, 0, T - 1));
  return at::tensor(timesteps, at::TensorOptions().dtype(at::kLong));
}

at::Tensor ddim_sigmas(const models::NoiseSchedule& schedule, int64_t steps) {
  const auto timesteps = ddim_timesteps(schedule, steps);
  return schedule.sigmas.index_select(0, timesteps).flip(0).contiguous();  // [len(timesteps)]
}

}  // namespace ls::sample
