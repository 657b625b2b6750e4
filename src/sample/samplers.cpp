// Euler, Euler ancestral, Heun, DPM2, DPM2 ancestral, LMS (k-diffusion k_diffusion/sampling.py at
// 4601bf0853) and A1111's DDIM, plus the run plumbing of samplers_internal.h. Each update repeats the
// reference's expression op for op (operand order, 0-dim scalars), which is what makes the float32
// trajectories match the k-diffusion fixture bit for bit.
#include "sample/samplers.h"

#include <algorithm>
#include <cmath>
#include <deque>

#include "core/error.h"
#include "sample/samplers_internal.h"

namespace ls::sample {

namespace samplers_detail {

SamplerRun::SamplerRun(const char* name, const DenoiseFn& model, const at::Tensor& x, const at::Tensor& sigmas,
                       const StepCallback& cb)
    : name_(name), model_(model), cb_(cb) {
  LS_CHECK(static_cast<bool>(model), name_, ": no denoiser given");
  LS_CHECK(x.defined() && x.dim() >= 1 && at::isFloatingType(x.scalar_type()), name_,
           ": x must be a floating tensor [B, ...], got ", x.defined() ? x.sizes() : at::IntArrayRef{});
  LS_CHECK(sigmas.defined() && sigmas.dim() == 1 && sigmas.size(0) >= 1 && at::isFloatingType(sigmas.scalar_type()),
           name_, ": sigmas must be a 1-D floating tensor with at least one entry");
  sigmas_ = sigmas.detach().to(at::kCPU).contiguous();
  steps_ = sigmas_.size(0) - 1;
  const auto as_double = sigmas_.to(at::kDouble);
  values_.assign(as_double.data_ptr<double>(), as_double.data_ptr<double>() + sigmas_.size(0));
  for (size_t i = 0; i < values_.size(); ++i) {
    LS_CHECK(std::isfinite(values_[i]) && values_[i] >= 0, name_, ": sigmas must be finite and >= 0, got ",
             values_[i], " at index ", i);
    LS_CHECK(i == 0 || values_[i] <= values_[i - 1], name_, ": sigmas must not increase, got ", values_[i - 1],
             " then ", values_[i], " at index ", i);
  }
  LS_CHECK(steps_ == 0 || values_[0] > 0, name_, ": the first sigma must be > 0");
  s_in_ = at::ones({x.size(0)}, x.options());
}

at::Tensor SamplerRun::denoise(const at::Tensor& x, const at::Tensor& sigma) const {
  auto denoised = model_(x, sigma * s_in_);  // sigma [B]
  LS_CHECK(denoised.defined() && denoised.sizes() == x.sizes(), name_, ": the denoiser returned ",
           denoised.defined() ? denoised.sizes() : at::IntArrayRef{}, " for x ", x.sizes());
  return denoised;
}

void SamplerRun::report(int64_t i, const at::Tensor& x, const at::Tensor& denoised) const {
  if (!cb_) return;
  StepInfo info;
  info.step = i;
  info.steps = steps_;
  info.sigma = value(i);
  info.sigma_next = value(i + 1);
  info.x = x;
  info.denoised = denoised;
  cb_(info);
}

at::Tensor SamplerRun::draw(const NoiseFn& noise, const at::Tensor& sigma, const at::Tensor& sigma_next,
                            const at::Tensor& x) const {
  LS_CHECK(static_cast<bool>(noise), name_, ": this sampler adds noise and needs a noise function");
  auto n = noise(sigma.item<double>(), sigma_next.item<double>());
  LS_CHECK(n.defined() && n.sizes() == x.sizes(), name_, ": the noise function returned ",
           n.defined() ? n.sizes() : at::IntArrayRef{}, " for x ", x.sizes());
  return n.to(x.device(), x.scalar_type());
}

AncestralStep ancestral_step(const at::Tensor& sigma_from, const at::Tensor& sigma_to, double eta) {
  if (eta == 0) return {sigma_to, at::zeros_like(sigma_to)};
  const auto up = at::pow(at::pow(sigma_to, 2) * (at::pow(sigma_from, 2) - at::pow(sigma_to, 2)) /
                              at::pow(sigma_from, 2), 0.5) * eta;
  // Python min(sigma_to, up): the first argument unless the second is smaller.
  const auto sigma_up = up.item<double>() < sigma_to.item<double>() ? up : sigma_to;
  const auto sigma_down = at::pow(at::pow(sigma_to, 2) - at::pow(sigma_up, 2), 0.5);
  return {sigma_down, sigma_up};
}

}  // namespace samplers_detail

using samplers_detail::SamplerRun;
using samplers_detail::to_d;

at::Tensor sample_euler(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const StepCallback& cb) {
  const SamplerRun run("euler", model, x, sigmas, cb);
  for (int64_t i = 0; i < run.steps(); ++i) {
    // s_churn = 0: sigma_hat is sigmas[i] and no noise is added.
    const auto sigma = run.sigma(i);
    const auto denoised = run.denoise(x, sigma);
    const auto d = to_d(x, sigma, denoised);
    run.report(i, x, denoised);
    const auto dt = run.sigma(i + 1) - sigma;
    x = x + d * dt;
  }
  return x;
}

at::Tensor sample_euler_ancestral(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                                  const StepCallback& cb, const SamplerOptions& opts) {
  const SamplerRun run("euler_ancestral", model, x, sigmas, cb);
  for (int64_t i = 0; i < run.steps(); ++i) {
    const auto sigma = run.sigma(i), sigma_next = run.sigma(i + 1);
    const auto denoised = run.denoise(x, sigma);
    const auto step = samplers_detail::ancestral_step(sigma, sigma_next, opts.eta);
    run.report(i, x, denoised);
    const auto d = to_d(x, sigma, denoised);
    const auto dt = step.down - sigma;
    x = x + d * dt;
    if (run.value(i + 1) > 0) x = x + run.draw(noise, sigma, sigma_next, x) * opts.s_noise * step.up;
  }
  return x;
}

at::Tensor sample_heun(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const StepCallback& cb) {
  const SamplerRun run("heun", model, x, sigmas, cb);
  for (int64_t i = 0; i < run.steps(); ++i) {
    const auto sigma = run.sigma(i), sigma_next = run.sigma(i + 1);
    const auto denoised = run.denoise(x, sigma);
    const auto d = to_d(x, sigma, denoised);
    run.report(i, x, denoised);
    const auto dt = sigma_next - sigma;
    if (run.value(i + 1) == 0) {
      x = x + d * dt;  // Euler on the last step
    } else {
      const auto x_2 = x + d * dt;
      const auto denoised_2 = run.denoise(x_2, sigma_next);
      const auto d_2 = to_d(x_2, sigma_next, denoised_2);
      const auto d_prime = (d + d_2) / 2;
      x = x + d_prime * dt;
    }
  }
  return x;
}

at::Tensor sample_dpm_2(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const StepCallback& cb) {
  const SamplerRun run("dpm_2", model, x, sigmas, cb);
  for (int64_t i = 0; i < run.steps(); ++i) {
    const auto sigma = run.sigma(i), sigma_next = run.sigma(i + 1);
    const auto denoised = run.denoise(x, sigma);
    const auto d = to_d(x, sigma, denoised);
    run.report(i, x, denoised);
    if (run.value(i + 1) == 0) {
      x = x + d * (sigma_next - sigma);
    } else {
      // DPM-Solver-2: the midpoint in log sigma.
      const auto sigma_mid = at::lerp(sigma.log(), sigma_next.log(), 0.5).exp();
      const auto dt_1 = sigma_mid - sigma, dt_2 = sigma_next - sigma;
      const auto x_2 = x + d * dt_1;
      const auto denoised_2 = run.denoise(x_2, sigma_mid);
      const auto d_2 = to_d(x_2, sigma_mid, denoised_2);
      x = x + d_2 * dt_2;
    }
  }
  return x;
}

at::Tensor sample_dpm_2_ancestral(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                                  const StepCallback& cb, const SamplerOptions& opts) {
  const SamplerRun run("dpm_2_ancestral", model, x, sigmas, cb);
  for (int64_t i = 0; i < run.steps(); ++i) {
    const auto sigma = run.sigma(i), sigma_next = run.sigma(i + 1);
    const auto denoised = run.denoise(x, sigma);
    const auto step = samplers_detail::ancestral_step(sigma, sigma_next, opts.eta);
    run.report(i, x, denoised);
    const auto d = to_d(x, sigma, denoised);
    if (samplers_detail::is_zero(step.down)) {
      x = x + d * (step.down - sigma);
    } else {
      const auto sigma_mid = at::lerp(sigma.log(), step.down.log(), 0.5).exp();
      const auto dt_1 = sigma_mid - sigma, dt_2 = step.down - sigma;
      const auto x_2 = x + d * dt_1;
      const auto denoised_2 = run.denoise(x_2, sigma_mid);
      const auto d_2 = to_d(x_2, sigma_mid, denoised_2);
      x = x + d_2 * dt_2;
      x = x + run.draw(noise, sigma, sigma_next, x) * opts.s_noise * step.up;
    }
  }
  return x;
}

std::vector<double> lms_coefficients(const std::vector<double>& sigmas, int64_t i, int64_t order,
                                     bool float32_sigmas) {
  LS_CHECK(i >= 0 && i + 1 < static_cast<int64_t>(sigmas.size()) && order >= 1 && order <= 8, "lms: step ", i,
           " and order ", order, " do not fit ", sigmas.size(), " sigmas (order must lie in [1, 8])");
  const int64_t cur = std::min(i + 1, order);
  // The Lagrange basis has degree cur - 1 <= 7, which 4-point Gauss-Legendre integrates exactly.
  static const double kNodes[4] = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563,
                                   0.8611363115940526};
  static const double kWeights[4] = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461,
                                     0.3478548451374538};
  const auto t = [&](int64_t k) { return sigmas[static_cast<size_t>(k)]; };
  // k-diffusion reads the sigmas into a numpy array of their dtype, so for float32 sigmas the node
  // differences in the denominators round in float32 (tau - t[k] is float64: tau is a Python float).
  const auto node_diff = [&](int64_t p, int64_t q) {
    return float32_sigmas ? static_cast<double>(static_cast<float>(t(p)) - static_cast<float>(t(q))) : t(p) - t(q);
  };
  const double half = (t(i + 1) - t(i)) / 2, centre = (t(i + 1) + t(i)) / 2;
  std::vector<double> coeffs;
  for (int64_t j = 0; j < cur; ++j) {
    double integral = 0;
    for (int q = 0; q < 4; ++q) {
      const double tau = centre + half * kNodes[q];
      double prod = 1.0;
      for (int64_t k = 0; k < cur; ++k) {
        if (k != j) prod *= (tau - t(i - k)) / node_diff(i - j, i - k);
      }
      integral += kWeights[q] * half * prod;
    }
    coeffs.push_back(integral);
  }
  return coeffs;
}

at::Tensor sample_lms(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const StepCallback& cb,
                      int64_t order) {
  const SamplerRun run("lms", model, x, sigmas, cb);
  LS_CHECK(order >= 1 && order <= 8, "lms: order must lie in [1, 8], got ", order);
  const bool float32_sigmas = sigmas.scalar_type() == at::kFloat;
  std::vector<double> values;
  for (int64_t i = 0; i <= run.steps(); ++i) values.push_back(run.value(i));
  std::deque<at::Tensor> ds;
  for (int64_t i = 0; i < run.steps(); ++i) {
    const auto sigma = run.sigma(i);
    const auto denoised = run.denoise(x, sigma);
    ds.push_back(to_d(x, sigma, denoised));
    if (static_cast<int64_t>(ds.size()) > order) ds.pop_front();
    run.report(i, x, denoised);
    const auto coeffs = lms_coefficients(values, i, order, float32_sigmas);
    // sum(coeff * d for coeff, d in zip(coeffs, reversed(ds))): newest derivative first.
    at::Tensor update = ds.back() * coeffs[0];
    for (size_t j = 1; j < coeffs.size(); ++j) update = update + ds[ds.size() - 1 - j] * coeffs[j];
    x = x + update;
  }
  return x;
}

at::Tensor sample_ddim(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                       const StepCallback& cb, double eta) {
  const SamplerRun run("ddim", model, x, sigmas, cb);
  LS_CHECK(eta >= 0 && eta <= 1, "ddim: eta must lie in [0, 1], got ", eta);
  for (int64_t i = 0; i < run.steps(); ++i) {
    const auto sigma = run.sigma(i);
    const auto denoised = run.denoise(x, sigma);  // pred_x0
    run.report(i, x, denoised);
    const double s = run.value(i), s_next = run.value(i + 1);
    if (s_next == 0) {
      x = denoised;
      continue;
    }
    const auto eps = to_d(x, sigma, denoised);
    // DDIM's s_t / sqrt(a_prev) and sqrt(1 - a_prev - s_t^2) / sqrt(a_prev) in sigma terms, in double.
    const double up = eta * s_next * std::sqrt(std::max(0.0, 1 - (s_next * s_next) / (s * s)));
    const double down = std::sqrt(std::max(0.0, s_next * s_next - up * up));
    x = denoised + eps * down;
    if (eta > 0) x = x + run.draw(noise, sigma, run.sigma(i + 1), x) * up;
  }
  return x;
}

}  // namespace ls::sample
