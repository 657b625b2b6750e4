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
#include "train/train_noise.h"

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
  bool noise_offset_random_strength = false;  // the offset is rand() * noise_offset, one per step
  double adaptive_noise_scale = 0;  // 0: off; else the offset grows with |mean latent| (needs latents)
  int multires_noise_iterations = 0;  // 0: off
  double multires_noise_discount = 0.3;
  double ip_noise_gamma = 0;  // 0: off
  bool ip_noise_gamma_random_strength = false;
  int min_timestep = 0, max_timestep = 1000;
};

/// Every draw of one step for `n` images of latent shape [channels, h, w]; the generators are
/// seeded by the caller. Order: posterior epsilon, noise, offset strength, offset, timesteps,
/// pyramid octaves, input perturbation strength and noise (float32, int64), each only when its
/// option is on, so a run without the newer options draws what it always drew.
struct StepDraws {
  at::Tensor posterior_eps;  // [n, C, h, w], undefined without options.posterior
  at::Tensor noise;          // [n, C, h, w]: the target noise, complete unless `pending` is set
  at::Tensor timesteps;      // [n]
  at::Tensor ip_noise;       // [n, C, h, w] strength x randn, added to the UNet input only; or undefined
  // With adaptive_noise_scale the offset depends on the latents, so noise is the plain Gaussian draw
  // and these parts are combined by finish_noise() once the latents are known.
  bool pending = false;
  at::Tensor offset_draw;    // [n, C, 1, 1]
  at::Tensor offset;         // [] the step's offset strength
  std::vector<PyramidOctave> octaves;
  StepDraws slice(int64_t first, int64_t count) const;
};
StepDraws draw_step(int64_t n, int64_t channels, int64_t h, int64_t w, const models::NoiseSchedule& schedule,
                    const StepDrawOptions& options, c10::Device device);

/// The target noise of a slice: draws.noise, or with adaptive_noise_scale the offset from these
/// latents and then the pyramid octaves (whose normalisation then spans the slice, not the step:
/// kohya's per-micro-batch behaviour, the one combination a split step cannot reproduce exactly).
at::Tensor finish_noise(const StepDraws& draws, const at::Tensor& latents, const StepDrawOptions& options);

/// The factor a slot's mean loss is multiplied by: count / step_images, written so that a slot
/// holding the whole step multiplies by exactly 1 and an even share divides by an integer.
at::Tensor weight_share(const at::Tensor& loss, int64_t count, int64_t step_images);

}  // namespace ls::train
