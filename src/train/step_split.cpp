#include "train/step_split.h"

#include <ATen/Context.h>
#include <ATen/ATen.h>

#include "core/error.h"
#include "train/loss.h"

namespace ls::train {

std::vector<MicroBatch> rank_micro_batches(int64_t step_images, int batch_size, int world_size, int rank,
                                           int accumulation) {
  LS_CHECK(batch_size >= 1 && world_size >= 1 && accumulation >= 1 && rank >= 0 && rank < world_size,
           "step split: batch ", batch_size, ", world ", world_size, ", rank ", rank, ", accumulation ", accumulation);
  std::vector<MicroBatch> out;
  for (int m = 0; m < accumulation; ++m) {
    const int64_t first = (static_cast<int64_t>(m) * world_size + rank) * batch_size;
    if (first >= step_images) continue;
    out.push_back({m, first, std::min<int64_t>(batch_size, step_images - first)});
  }
  return out;
}

StepDraws StepDraws::slice(int64_t first, int64_t count) const {
  auto rows = [&](const at::Tensor& t) { return t.defined() ? t.narrow(0, first, count) : t; };
  StepDraws s;
  s.posterior_eps = rows(posterior_eps);
  s.noise = rows(noise);
  s.timesteps = rows(timesteps);
  s.ip_noise = rows(ip_noise);
  s.pending = pending;
  s.offset_draw = rows(offset_draw);
  s.offset = offset;
  for (const PyramidOctave& o : octaves) s.octaves.push_back({o.r, rows(o.draw)});
  return s;
}

namespace {

// kohya's order: the offset (adaptive only when the draws are pending the latents), then the pyramid.
at::Tensor step_split_compose(const StepDraws& d, const at::Tensor& latents, const StepDrawOptions& o) {
  at::Tensor noise = d.noise;
  if (d.offset_draw.defined())
    noise = offset_noise(latents, noise, d.offset_draw, d.offset, d.pending ? o.adaptive_noise_scale : 0.0);
  if (!d.octaves.empty()) noise = pyramid_noise(noise, d.octaves, o.multires_noise_discount);
  return noise;
}

// kohya's random strengths: torch.rand(1) * value, one per batch (here: per step).
at::Tensor step_split_strength(double value, bool random, at::Generator& gen, const at::TensorOptions& opts) {
  if (!random) return at::scalar_tensor(value, opts);
  return at::rand({}, gen, opts) * value;
}

}  // namespace

StepDraws draw_step(int64_t n, int64_t channels, int64_t h, int64_t w, const models::NoiseSchedule& schedule,
                    const StepDrawOptions& o, c10::Device device) {
  LS_CHECK(o.multires_noise_iterations >= 0, "multires_noise_iterations must be >= 0, got ", o.multires_noise_iterations);
  at::Generator gen = at::globalContext().defaultGenerator(device);
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
  StepDraws d;
  if (o.posterior) d.posterior_eps = at::randn({n, channels, h, w}, gen, opts);
  d.noise = at::randn({n, channels, h, w}, gen, opts);
  if (o.noise_offset != 0) {
    d.offset = step_split_strength(o.noise_offset, o.noise_offset_random_strength, gen, opts);
    d.offset_draw = at::randn({n, channels, 1, 1}, gen, opts);
  }
  d.timesteps = schedule.sample_timesteps(n, o.min_timestep, o.max_timestep, gen);
  if (o.multires_noise_iterations > 0) {
    const auto u = at::rand({o.multires_noise_iterations}, gen, opts.dtype(at::kDouble)).cpu();
    const std::vector<double> uniforms(u.data_ptr<double>(), u.data_ptr<double>() + u.numel());
    const auto sizes = pyramid_sizes(h, w, uniforms);
    for (size_t i = 0; i < sizes.size(); ++i)
      d.octaves.push_back({uniforms[i] * 2 + 2, at::randn({n, channels, sizes[i].first, sizes[i].second}, gen, opts)});
  }
  if (o.ip_noise_gamma != 0) {
    const auto strength = step_split_strength(o.ip_noise_gamma, o.ip_noise_gamma_random_strength, gen, opts);
    d.ip_noise = strength * at::randn({n, channels, h, w}, gen, opts);
  }
  // Without adaptive_noise_scale the whole step's noise is made here (the pyramid's normalisation
  // then spans the step however it is split) and the parts are consumed.
  d.pending = o.adaptive_noise_scale != 0 && o.noise_offset != 0;
  if (!d.pending) {
    d.noise = step_split_compose(d, {}, o);
    d.offset_draw = at::Tensor();
    d.octaves.clear();
  }
  return d;
}

at::Tensor finish_noise(const StepDraws& d, const at::Tensor& latents, const StepDrawOptions& o) {
  return d.pending ? step_split_compose(d, latents, o) : d.noise;
}

at::Tensor weight_share(const at::Tensor& loss, int64_t count, int64_t step_images) {
  if (count == step_images) return loss;
  // An even share (every slot full) divides exactly as gradient accumulation's 1/accumulation.
  if (step_images % count == 0) return loss / static_cast<double>(step_images / count);
  return loss * static_cast<double>(count) / static_cast<double>(step_images);
}

}  // namespace ls::train
