// kohya's loss weights, noise offset and the epsilon-prediction training loss; see loss.h for the
// references. Each weight repeats kohya's torch ops in order (minimum against a full tensor,
// reciprocal for `1 / x`), so float32 results equal kohya's bit for bit.
#include "train/loss.h"

#include <vector>

#include <ATen/ATen.h>

#include "core/error.h"

namespace ls::train {

at::Tensor snr_at(const models::NoiseSchedule& schedule, const at::Tensor& t) {
  LS_CHECK(schedule.snr.defined(), "loss: the noise schedule is empty");
  LS_CHECK(t.dim() == 1 && !at::isFloatingType(t.scalar_type()),
           "loss: timesteps must be a 1-D integer tensor, got ", t.sizes(), " ", t.scalar_type());
  const auto idx = t.to(at::kLong);
  if (idx.numel() > 0) {
    const auto lo = idx.min().item<int64_t>(), hi = idx.max().item<int64_t>();
    LS_CHECK(lo >= 0 && hi < schedule.num_timesteps(), "loss: timesteps must lie in [0, ",
             schedule.num_timesteps(), "), got ", lo, "..", hi);
  }
  return schedule.snr.to(t.device()).index_select(0, idx);  // [B]
}

at::Tensor min_snr_weight(const at::Tensor& snr_t, double gamma, bool v_prediction) {
  LS_CHECK(gamma > 0, "min_snr_gamma must be > 0, got ", gamma, " (5 is the paper's and kohya's advice)");
  const auto clipped = at::minimum(snr_t, at::full_like(snr_t, gamma));
  const auto weight = v_prediction ? at::div(clipped, snr_t + 1) : at::div(clipped, snr_t);
  return weight.to(at::kFloat);  // kohya: .float()
}

namespace {

// kohya caps SNR at 1000 before these weights: snr is huge (and infinite with zero terminal SNR
// schedules read backwards) near t = 0.
at::Tensor capped_snr(const at::Tensor& snr_t) { return at::minimum(snr_t, at::ones_like(snr_t) * 1000); }

}  // namespace

at::Tensor debiased_weight(const at::Tensor& snr_t, bool v_prediction) {
  const auto s = capped_snr(snr_t);
  return v_prediction ? (s + 1).reciprocal() : at::sqrt(s).reciprocal();
}

at::Tensor v_pred_like_noise_pred_scale(const at::Tensor& snr_t) {
  const auto s = capped_snr(snr_t);
  return s / (s + 1);
}

at::Tensor apply_noise_offset(const at::Tensor& latents, const at::Tensor& noise, double noise_offset,
                              double adaptive_noise_scale, at::Generator generator) {
  LS_CHECK(latents.dim() == 4 && latents.sizes() == noise.sizes(), "noise offset: latents ", latents.sizes(),
           " and noise ", noise.sizes(), " must both be [B, C, H, W]");
  if (noise_offset == 0) return noise;
  LS_CHECK(generator.defined(), "noise offset: a generator is required");
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(generator.device());
  const auto draw = at::randn({latents.size(0), latents.size(1), 1, 1}, generator, opts)
                        .to(latents.device());  // [B, C, 1, 1]
  if (adaptive_noise_scale == 0) return noise + noise_offset * draw;
  const auto latent_mean = at::abs(latents.mean({2, 3}, /*keepdim=*/true));                     // [B, C, 1, 1]
  // kohya: torch.clamp(offset, 0.0, None), for a negative adaptive scale.
  const auto offset = at::clamp_min(noise_offset + adaptive_noise_scale * latent_mean, 0.0);  // [B, C, 1, 1]
  return noise + offset * draw;
}

LossParts diffusion_loss(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& loss_weights,
                         const at::Tensor& t, const models::NoiseSchedule& schedule, double min_snr_gamma) {
  LS_CHECK(pred.dim() >= 2 && pred.sizes() == target.sizes(), "loss: prediction ", pred.sizes(), " and target ",
           target.sizes(), " must have the same [B, ...] shape");
  const int64_t batch = pred.size(0);
  LS_CHECK(loss_weights.numel() == batch, "loss: need one loss weight per sample (", batch, "), got ",
           loss_weights.sizes());
  LS_CHECK(t.dim() == 1 && t.size(0) == batch, "loss: need one timestep per sample (", batch, "), got ",
           t.sizes());
  LS_CHECK(min_snr_gamma >= 0, "min_snr_gamma must be >= 0 (0 = off), got ", min_snr_gamma);
  // kohya: mse_loss(pred.float(), target.float()); half and bfloat16 predictions are upcast first.
  const auto dtype = at::promote_types(at::promote_types(pred.scalar_type(), target.scalar_type()), at::kFloat);
  const auto elementwise = at::mse_loss(pred.to(dtype), target.to(dtype), at::Reduction::None);  // [B, ...]
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < pred.dim(); ++d) dims.push_back(d);
  auto per_sample = elementwise.mean(dims);                                                     // [B]
  per_sample = per_sample * loss_weights.reshape({batch}).to(per_sample.device(), dtype);      // [B]
  if (min_snr_gamma > 0) {
    per_sample = per_sample * min_snr_weight(snr_at(schedule, t).to(per_sample.device()), min_snr_gamma);
  }
  return {per_sample.mean(), per_sample};
}

}  // namespace ls::train
