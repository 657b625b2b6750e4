// kohya's loss weights and the training loss; see loss.h for the
// references. Each weight repeats kohya's torch ops in order (minimum against a full tensor,
// reciprocal for `1 / x`), so float32 results equal kohya's bit for bit.
#include "train/loss.h"

#include <cmath>
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

LossType parse_loss_type(const std::string& name) {
  if (name == "l2") return LossType::kL2;
  if (name == "l1") return LossType::kL1;
  if (name == "huber") return LossType::kHuber;
  if (name == "smooth_l1") return LossType::kSmoothL1;
  LS_FAIL("loss_type '", name, "' is not one of l2, l1, huber, smooth_l1");
}

HuberSchedule parse_huber_schedule(const std::string& name) {
  if (name == "constant") return HuberSchedule::kConstant;
  if (name == "exponential") return HuberSchedule::kExponential;
  if (name == "snr") return HuberSchedule::kSnr;
  LS_FAIL("huber_schedule '", name, "' is not one of constant, exponential, snr");
}

at::Tensor huber_threshold(const LossOptions& o, const at::Tensor& t, const models::NoiseSchedule& schedule) {
  if (o.type != LossType::kHuber && o.type != LossType::kSmoothL1) return {};
  LS_CHECK(o.huber_c > 0, "huber_c must be > 0, got ", o.huber_c);
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(t.device());
  switch (o.huber_schedule) {
    case HuberSchedule::kConstant:
      return at::full({t.size(0)}, o.huber_c * o.huber_scale, f32);
    case HuberSchedule::kExponential: {
      // kohya: alpha = -log(c) / T (a Python float), exp(-alpha * t) in torch's default float32.
      const double alpha = -std::log(o.huber_c) / static_cast<double>(schedule.num_timesteps());
      return at::exp(t.to(at::kFloat) * -alpha) * o.huber_scale;
    }
    case HuberSchedule::kSnr: {
      // kohya reads the scheduler's alphas_cumprod (with zero_terminal_snr, the fixed one) and
      // leaves huber_scale out of this branch.
      const auto acp = schedule.alphas_cumprod.index_select(0, t.to(at::kCPU, at::kLong));  // [B]
      const auto sigmas = ((1.0 - acp) / acp).pow(0.5);
      // Python's scalar / tensor is reciprocal() * scalar.
      return ((1 + sigmas).pow(2).reciprocal() * (1 - o.huber_c) + o.huber_c).to(t.device());
    }
  }
  LS_FAIL("huber_threshold: unknown schedule");
}

at::Tensor elementwise_loss(const at::Tensor& pred, const at::Tensor& target, LossType type,
                            const at::Tensor& huber_c) {
  if (type == LossType::kL2) return at::mse_loss(pred, target, at::Reduction::None);
  if (type == LossType::kL1) return at::l1_loss(pred, target, at::Reduction::None);
  LS_CHECK(huber_c.defined() && huber_c.numel() == pred.size(0), "loss: huber / smooth_l1 need one huber_c per sample");
  std::vector<int64_t> shape(static_cast<size_t>(pred.dim()), 1);
  shape[0] = -1;
  const auto c = huber_c.to(pred.device(), pred.scalar_type()).view(shape);  // [B, 1, ...]
  const auto root = at::sqrt((pred - target).pow(2) + c.pow(2)) - c;
  return type == LossType::kHuber ? 2 * c * root : 2 * root;
}

at::Tensor apply_loss_mask(const at::Tensor& loss, const at::Tensor& mask) {
  LS_CHECK(loss.dim() == 4 && mask.dim() == 4 && mask.size(1) == 1 && mask.size(0) == loss.size(0),
           "loss mask: need loss [B, C, h, w] and mask [B, 1, H, W], got ", loss.sizes(), " and ", mask.sizes());
  const auto m = at::adaptive_avg_pool2d(mask.to(loss.device(), loss.scalar_type()), {loss.size(2), loss.size(3)});
  return loss * m;
}

at::Tensor timestep_weighted(const at::Tensor& per_sample, const at::Tensor& t, const models::NoiseSchedule& schedule,
                             const LossOptions& o) {
  LS_CHECK(o.min_snr_gamma >= 0, "min_snr_gamma must be >= 0 (0 = off), got ", o.min_snr_gamma);
  const bool any = o.min_snr_gamma > 0 || o.scale_v_pred_loss_like_noise_pred || o.v_pred_like_loss != 0 ||
                   o.debiased_estimation;
  if (!any) return per_sample;
  const auto snr_t = snr_at(schedule, t).to(per_sample.device());  // [B]
  auto loss = per_sample;
  if (o.min_snr_gamma > 0) loss = loss * min_snr_weight(snr_t, o.min_snr_gamma, o.v_prediction);
  if (o.scale_v_pred_loss_like_noise_pred) loss = loss * v_pred_like_noise_pred_scale(snr_t);
  if (o.v_pred_like_loss != 0) loss = loss + loss / v_pred_like_noise_pred_scale(snr_t) * o.v_pred_like_loss;
  if (o.debiased_estimation) loss = debiased_weight(snr_t, o.v_prediction) * loss;
  return loss;
}

LossParts diffusion_loss(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& loss_weights,
                         const at::Tensor& t, const models::NoiseSchedule& schedule, const LossOptions& options,
                         const at::Tensor& mask) {
  LS_CHECK(pred.dim() >= 2 && pred.sizes() == target.sizes(), "loss: prediction ", pred.sizes(), " and target ",
           target.sizes(), " must have the same [B, ...] shape");
  const int64_t batch = pred.size(0);
  LS_CHECK(loss_weights.numel() == batch, "loss: need one loss weight per sample (", batch, "), got ",
           loss_weights.sizes());
  LS_CHECK(t.dim() == 1 && t.size(0) == batch, "loss: need one timestep per sample (", batch, "), got ",
           t.sizes());
  // kohya: conditional_loss(pred.float(), target.float()); half and bfloat16 predictions are upcast first.
  const auto dtype = at::promote_types(at::promote_types(pred.scalar_type(), target.scalar_type()), at::kFloat);
  auto elementwise = elementwise_loss(pred.to(dtype), target.to(dtype), options.type,
                                      huber_threshold(options, t, schedule));  // [B, ...]
  if (mask.defined()) elementwise = apply_loss_mask(elementwise, mask);
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < pred.dim(); ++d) dims.push_back(d);
  auto per_sample = elementwise.mean(dims);                                                // [B]
  per_sample = per_sample * loss_weights.reshape({batch}).to(per_sample.device(), dtype);  // [B]
  per_sample = timestep_weighted(per_sample, t, schedule, options);
  return {per_sample.mean(), per_sample};
}

}  // namespace ls::train
