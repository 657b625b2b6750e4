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
  StepDraws s;
  if (posterior_eps.defined()) s.posterior_eps = posterior_eps.narrow(0, first, count);
  s.noise = noise.narrow(0, first, count);
  s.timesteps = timesteps.narrow(0, first, count);
  return s;
}

StepDraws draw_step(int64_t n, int64_t channels, int64_t h, int64_t w, const models::NoiseSchedule& schedule,
                    const StepDrawOptions& o, c10::Device device) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
  StepDraws d;
  if (o.posterior) d.posterior_eps = at::randn({n, channels, h, w}, gen, opts);
  const at::Tensor noise = at::randn({n, channels, h, w}, gen, opts);
  // Without adaptive_noise_scale the offset needs only the latents' shape, which the noise has.
  d.noise = apply_noise_offset(noise, noise, o.noise_offset, 0.0, gen);
  d.timesteps = schedule.sample_timesteps(n, o.min_timestep, o.max_timestep, gen);
  return d;
}

at::Tensor weight_share(const at::Tensor& loss, int64_t count, int64_t step_images) {
  if (count == step_images) return loss;
  // An even share (every slot full) divides exactly as gradient accumulation's 1/accumulation.
  if (step_images % count == 0) return loss / static_cast<double>(step_images / count);
  return loss * static_cast<double>(count) / static_cast<double>(step_images);
}

}  // namespace ls::train
