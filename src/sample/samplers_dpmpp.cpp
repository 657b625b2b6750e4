// The DPM-Solver++ samplers of k-diffusion k_diffusion/sampling.py at 4601bf0853: 2S ancestral, SDE,
// 2M, 2M SDE, 3M SDE. Written in the reference's log-sigma time t = -log sigma with the same operand
// order as the reference, so float32 trajectories match its fixture bit for bit.
#include "sample/samplers.h"

#include "core/error.h"
#include "sample/samplers_internal.h"

namespace ls::sample {

using samplers_detail::sigma_fn;
using samplers_detail::SamplerRun;
using samplers_detail::t_fn;
using samplers_detail::to_d;

at::Tensor sample_dpmpp_2s_ancestral(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas,
                                     const NoiseFn& noise, const StepCallback& cb, const SamplerOptions& opts) {
  const SamplerRun run("dpmpp_2s_ancestral", model, x, sigmas, cb);
  for (int64_t i = 0; i < run.steps(); ++i) {
    const auto sigma = run.sigma(i), sigma_next = run.sigma(i + 1);
    const auto denoised = run.denoise(x, sigma);
    const auto step = samplers_detail::ancestral_step(sigma, sigma_next, opts.eta);
    run.report(i, x, denoised);
    if (samplers_detail::is_zero(step.down)) {
      const auto d = to_d(x, sigma, denoised);
      x = x + d * (step.down - sigma);
    } else {
      // DPM-Solver++(2S), midpoint r = 1/2.
      const auto t = t_fn(sigma), t_next = t_fn(step.down);
      const auto h = t_next - t;
      const auto s = t + h * 0.5;
      const auto x_2 = (sigma_fn(s) / sigma_fn(t)) * x - (h.neg() * 0.5).expm1() * denoised;
      const auto denoised_2 = run.denoise(x_2, sigma_fn(s));
      x = (sigma_fn(t_next) / sigma_fn(t)) * x - h.neg().expm1() * denoised_2;
    }
    if (run.value(i + 1) > 0) x = x + run.draw(noise, sigma, sigma_next, x) * opts.s_noise * step.up;
  }
  return x;
}

at::Tensor sample_dpmpp_sde(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                            const StepCallback& cb, const SamplerOptions& opts) {
  const SamplerRun run("dpmpp_sde", model, x, sigmas, cb);
  const double r = 0.5, fac = 1 / (2 * r);
  for (int64_t i = 0; i < run.steps(); ++i) {
    const auto sigma = run.sigma(i), sigma_next = run.sigma(i + 1);
    const auto denoised = run.denoise(x, sigma);
    run.report(i, x, denoised);
    if (run.value(i + 1) == 0) {
      const auto d = to_d(x, sigma, denoised);
      x = x + d * (sigma_next - sigma);
      continue;
    }
    const auto t = t_fn(sigma), t_next = t_fn(sigma_next);
    const auto h = t_next - t;
    const auto s = t + h * r;
    // Step 1: to the midpoint s, ancestrally.
    auto step = samplers_detail::ancestral_step(sigma_fn(t), sigma_fn(s), opts.eta);
    const auto s_ = t_fn(step.down);
    auto x_2 = (sigma_fn(s_) / sigma_fn(t)) * x - (t - s_).expm1() * denoised;
    x_2 = x_2 + run.draw(noise, sigma_fn(t), sigma_fn(s), x) * opts.s_noise * step.up;
    const auto denoised_2 = run.denoise(x_2, sigma_fn(s));
    // Step 2: the full step with the midpoint's estimate.
    step = samplers_detail::ancestral_step(sigma_fn(t), sigma_fn(t_next), opts.eta);
    const auto t_next_ = t_fn(step.down);
    const auto denoised_d = denoised * (1 - fac) + denoised_2 * fac;
    x = (sigma_fn(t_next_) / sigma_fn(t)) * x - (t - t_next_).expm1() * denoised_d;
    x = x + run.draw(noise, sigma_fn(t), sigma_fn(t_next), x) * opts.s_noise * step.up;
  }
  return x;
}

at::Tensor sample_dpmpp_2m(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const StepCallback& cb) {
  const SamplerRun run("dpmpp_2m", model, x, sigmas, cb);
  at::Tensor old_denoised;
  for (int64_t i = 0; i < run.steps(); ++i) {
    const auto sigma = run.sigma(i), sigma_next = run.sigma(i + 1);
    const auto denoised = run.denoise(x, sigma);
    run.report(i, x, denoised);
    // With sigma_next = 0, t_next = inf: the ratio is 0 and expm1(-inf) = -1, so x becomes denoised.
    const auto t = t_fn(sigma), t_next = t_fn(sigma_next);
    const auto h = t_next - t;
    if (!old_denoised.defined() || run.value(i + 1) == 0) {
      x = (sigma_fn(t_next) / sigma_fn(t)) * x - h.neg().expm1() * denoised;
    } else {
      const auto h_last = t - t_fn(run.sigma(i - 1));
      const auto r = h_last / h;
      const auto half_inv_r = (r * 2).reciprocal();  // Python's 1 / (2 * r)
      const auto denoised_d = (half_inv_r + 1) * denoised - half_inv_r * old_denoised;
      x = (sigma_fn(t_next) / sigma_fn(t)) * x - h.neg().expm1() * denoised_d;
    }
    old_denoised = denoised;
  }
  return x;
}

at::Tensor sample_dpmpp_2m_sde(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                               const StepCallback& cb, const SamplerOptions& opts) {
  const SamplerRun run("dpmpp_2m_sde", model, x, sigmas, cb);
  at::Tensor old_denoised, h_last, h;
  for (int64_t i = 0; i < run.steps(); ++i) {
    const auto sigma = run.sigma(i), sigma_next = run.sigma(i + 1);
    const auto denoised = run.denoise(x, sigma);
    run.report(i, x, denoised);
    if (run.value(i + 1) == 0) {
      x = denoised;
    } else {
      const auto t = sigma.log().neg(), s = sigma_next.log().neg();
      h = s - t;
      const auto eta_h = h * opts.eta;
      const auto decay = (h.neg() - eta_h).expm1().neg();  // 1 - exp(-h - eta h)
      x = sigma_next / sigma * eta_h.neg().exp() * x + decay * denoised;
      if (old_denoised.defined()) {
        const auto inv_r = (h_last / h).reciprocal();
        if (opts.heun_solver) {
          x = x + (decay / (h.neg() - eta_h) + 1) * inv_r * (denoised - old_denoised);
        } else {
          x = x + decay * 0.5 * inv_r * (denoised - old_denoised);
        }
      }
      if (opts.eta != 0) {
        x = x + run.draw(noise, sigma, sigma_next, x) * sigma_next * (eta_h * -2).expm1().neg().sqrt() * opts.s_noise;
      }
    }
    old_denoised = denoised;
    h_last = h;
  }
  return x;
}

at::Tensor sample_dpmpp_3m_sde(const DenoiseFn& model, at::Tensor x, const at::Tensor& sigmas, const NoiseFn& noise,
                               const StepCallback& cb, const SamplerOptions& opts) {
  const SamplerRun run("dpmpp_3m_sde", model, x, sigmas, cb);
  at::Tensor denoised_1, denoised_2, h, h_1, h_2;
  for (int64_t i = 0; i < run.steps(); ++i) {
    const auto sigma = run.sigma(i), sigma_next = run.sigma(i + 1);
    const auto denoised = run.denoise(x, sigma);
    run.report(i, x, denoised);
    if (run.value(i + 1) == 0) {
      x = denoised;
    } else {
      const auto t = sigma.log().neg(), s = sigma_next.log().neg();
      h = s - t;
      const auto h_eta = h * (opts.eta + 1);
      x = h_eta.neg().exp() * x + h_eta.neg().expm1().neg() * denoised;
      if (h_2.defined()) {
        const auto r0 = h_1 / h, r1 = h_2 / h;
        const auto d1_0 = (denoised - denoised_1) / r0;
        const auto d1_1 = (denoised_1 - denoised_2) / r1;
        const auto d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1);
        const auto d2 = (d1_0 - d1_1) / (r0 + r1);
        const auto phi_2 = h_eta.neg().expm1() / h_eta + 1;
        const auto phi_3 = phi_2 / h_eta - 0.5;
        x = x + phi_2 * d1 - phi_3 * d2;
      } else if (h_1.defined()) {
        const auto r = h_1 / h;
        const auto d = (denoised - denoised_1) / r;
        const auto phi_2 = h_eta.neg().expm1() / h_eta + 1;
        x = x + phi_2 * d;
      }
      if (opts.eta != 0) {
        x = x + run.draw(noise, sigma, sigma_next, x) * sigma_next * (h * -2 * opts.eta).expm1().neg().sqrt() *
                    opts.s_noise;
      }
    }
    denoised_2 = denoised_1;
    denoised_1 = denoised;
    h_2 = h_1;
    h_1 = h;
  }
  return x;
}

}  // namespace ls::sample
