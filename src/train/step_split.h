// One optimizer step across ranks and gradient accumulation, as a function of the step alone: the
// step's images (data::epoch_plan, batch_size x world size x accumulation of one bucket) are cut
// into slots of batch_size, slot k = micro x world + rank, and every random draw of the step
// (VAE posterior, noise, noise offset, timesteps) is made for all its images at once from
// generators seeded by (seed, epoch, step) and sliced. So the union of what the ranks compute is
// what one process with the whole step as its batch computes: one process x batch 4, two ranks x
// batch 2, and two ranks x batch 1 x accumulation 2 train the same LoRA up to float reduction
// order. Each slot's loss is weighted by its share of the step (images / step images) and the
// ranks' gradients are summed, which is the step's mean loss however it was split; accelerate's
// DDP instead averages per-rank means, which differs only on a step with fewer images than slots.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "models/noise_schedule.h"

namespace ls::train {

/// A rank's share of one step: images [first, first + count) of the step's plan.
struct MicroBatch {
  int micro = 0;  // 0 .. accumulation - 1
  int64_t first = 0, count = 0;
};

/// The micro-batches of `rank` in a step of `step_images` images (count > 0 only: a short last
/// step of a bucket leaves some slots, and possibly a whole rank, without images).
std::vector<MicroBatch> rank_micro_batches(int64_t step_images, int batch_size, int world_size, int rank,
                                           int accumulation);

struct StepDrawOptions {
  bool posterior = false;   // draw the VAE posterior's epsilon (latents not cached)
  double noise_offset = 0;  // kohya's noise_offset (0: nothing drawn)
  int min_timestep = 0, max_timestep = 1000;
};

/// Every draw of one step for `n` images of latent shape [channels, h, w]; the generators are
/// seeded by the caller. Order: posterior epsilon, noise, offset, timesteps (float32, int64).
struct StepDraws {
  at::Tensor posterior_eps;  // [n, C, h, w], undefined without options.posterior
  at::Tensor noise;          // [n, C, h, w], the noise offset added
  at::Tensor timesteps;      // [n]
  StepDraws slice(int64_t first, int64_t count) const;
};
StepDraws draw_step(int64_t n, int64_t channels, int64_t h, int64_t w, const models::NoiseSchedule& schedule,
                    const StepDrawOptions& options, c10::Device device);

/// The factor a slot's mean loss is multiplied by: count / step_images, written so that a slot
/// holding the whole step multiplies by exactly 1 and an even share divides by an integer.
at::Tensor weight_share(const at::Tensor& loss, int64_t count, int64_t step_images);

}  // namespace ls::train
