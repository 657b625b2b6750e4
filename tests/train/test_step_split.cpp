// How one optimizer step is cut among ranks and micro-batches (train/step_split.h): every image
// of the step lands in exactly one slot, the draws of a slice are the whole step's draws at those
// rows, and the loss shares add up to the step's mean.
#include <gtest/gtest.h>

#include <ATen/Context.h>
#include <torch/torch.h>

#include "models/noise_schedule.h"
#include "train/step_split.h"

namespace ls::train {
namespace {

TEST(StepSplit, EveryImageOfAStepInExactlyOneSlot) {
  for (int64_t images : {1, 3, 4, 7, 8}) {
    for (int world : {1, 2, 3}) {
      for (int accumulation : {1, 2}) {
        std::vector<int> owner(static_cast<size_t>(images), -1);
        for (int rank = 0; rank < world; ++rank) {
          int last_micro = -1;
          for (const MicroBatch& m : rank_micro_batches(images, 2, world, rank, accumulation)) {
            EXPECT_GT(m.micro, last_micro);  // in micro order, each micro at most once
            last_micro = m.micro;
            EXPECT_EQ(m.first, (static_cast<int64_t>(m.micro) * world + rank) * 2);
            EXPECT_GE(m.count, 1);
            EXPECT_LE(m.count, 2);
            for (int64_t i = m.first; i < m.first + m.count; ++i) {
              EXPECT_EQ(owner[static_cast<size_t>(i)], -1) << "image " << i << " in two slots";
              owner[static_cast<size_t>(i)] = rank;
            }
          }
        }
        if (images <= 2 * world * accumulation)
          for (int o : owner) EXPECT_NE(o, -1) << images << " images, world " << world;
      }
    }
  }
  // A short step (3 images, 2 ranks x batch 1 x accumulation 2): rank 1's second slot is empty.
  EXPECT_EQ(rank_micro_batches(3, 1, 2, 1, 2).size(), 1u);
  EXPECT_EQ(rank_micro_batches(3, 1, 2, 0, 2).size(), 2u);
}

TEST(StepSplit, SlicedDrawsAreTheWholeStepsRows) {
  const models::NoiseSchedule schedule = models::NoiseSchedule::sdxl();
  StepDrawOptions o;
  o.posterior = true;
  o.noise_offset = 0.05;
  auto draw = [&] {
    at::Generator gen = at::globalContext().defaultGenerator(c10::Device(c10::kCPU));
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(1234);
    }
    return draw_step(4, 4, 8, 6, schedule, o, c10::kCPU);
  };
  const StepDraws whole = draw(), again = draw();
  EXPECT_TRUE(torch::equal(whole.noise, again.noise));
  ASSERT_EQ(whole.noise.sizes(), (std::vector<int64_t>{4, 4, 8, 6}));
  ASSERT_EQ(whole.posterior_eps.sizes(), whole.noise.sizes());
  ASSERT_EQ(whole.timesteps.sizes(), (std::vector<int64_t>{4}));
  const StepDraws part = whole.slice(1, 2);
  EXPECT_TRUE(torch::equal(part.noise, whole.noise.narrow(0, 1, 2)));
  EXPECT_TRUE(torch::equal(part.posterior_eps, whole.posterior_eps.narrow(0, 1, 2)));
  EXPECT_TRUE(torch::equal(part.timesteps, whole.timesteps.narrow(0, 1, 2)));
}

// With every noise option on, a slice is still the whole step's rows: the pyramid's normalisation and
// the random strengths are the step's, so splitting a step changes nothing.
TEST(StepSplit, NoiseOptionsAreDrawnForTheWholeStep) {
  const models::NoiseSchedule schedule = models::NoiseSchedule::sdxl();
  StepDrawOptions o;
  o.noise_offset = 0.1;
  o.noise_offset_random_strength = true;
  o.multires_noise_iterations = 6;
  o.multires_noise_discount = 0.3;
  o.ip_noise_gamma = 0.1;
  o.ip_noise_gamma_random_strength = true;
  auto draw = [&](const StepDrawOptions& options) {
    at::Generator gen = at::globalContext().defaultGenerator(c10::Device(c10::kCPU));
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(99);
    }
    return draw_step(4, 4, 16, 12, schedule, options, c10::kCPU);
  };
  const StepDraws whole = draw(o);
  EXPECT_FALSE(whole.pending);
  ASSERT_TRUE(whole.ip_noise.defined());
  EXPECT_NEAR(whole.noise.std().item<double>(), 1.0, 1e-6);  // the pyramid is normalised over the step
  const StepDraws part = whole.slice(2, 2);
  EXPECT_TRUE(torch::equal(finish_noise(part, {}, o), whole.noise.narrow(0, 2, 2)));
  EXPECT_TRUE(torch::equal(part.ip_noise, whole.ip_noise.narrow(0, 2, 2)));
  // The newer draws come after the old ones: without them the noise and timesteps are as before.
  StepDrawOptions plain;
  plain.noise_offset = 0.1;
  const StepDraws before = draw(plain);
  StepDrawOptions ip_only = plain;
  ip_only.ip_noise_gamma = 0.1;
  const StepDraws after = draw(ip_only);
  EXPECT_TRUE(torch::equal(before.noise, after.noise));
  EXPECT_TRUE(torch::equal(before.timesteps, after.timesteps));
  EXPECT_FALSE(before.ip_noise.defined());
  // ip noise is strength x randn: with a fixed strength its std is about the strength.
  EXPECT_NEAR(after.ip_noise.std().item<double>(), 0.1, 0.01);
}

// adaptive_noise_scale needs the latents: the offset is finished per slice, per (b, c), so a slice
// equals the whole step's rows here too (no pyramid).
TEST(StepSplit, AdaptiveOffsetIsFinishedWithTheLatents) {
  const models::NoiseSchedule schedule = models::NoiseSchedule::sdxl();
  StepDrawOptions o;
  o.noise_offset = 0.05;
  o.adaptive_noise_scale = 0.5;
  at::Generator gen = at::globalContext().defaultGenerator(c10::Device(c10::kCPU));
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(7);
  }
  const StepDraws whole = draw_step(3, 4, 8, 8, schedule, o, c10::kCPU);
  ASSERT_TRUE(whole.pending);
  const auto latents = torch::randn({3, 4, 8, 8}) + 0.5;
  const auto all = finish_noise(whole, latents, o);
  const auto one = finish_noise(whole.slice(1, 1), latents.narrow(0, 1, 1), o);
  EXPECT_TRUE(torch::equal(one, all.narrow(0, 1, 1)));
  const auto expected = whole.noise + (0.05 + 0.5 * latents.mean({2, 3}, true).abs()) * whole.offset_draw;
  EXPECT_TRUE(torch::allclose(all, expected, 1e-6, 1e-7));
}

TEST(StepSplit, LossSharesAddUpToTheStepMean) {
  const torch::Tensor loss = torch::tensor(0.7, torch::kDouble);
  EXPECT_TRUE(torch::equal(weight_share(loss, 4, 4), loss));  // the whole step: exactly itself
  EXPECT_EQ(weight_share(loss, 2, 4).item<double>(), 0.7 / 2);  // an even share: one division
  EXPECT_DOUBLE_EQ(weight_share(loss, 2, 3).item<double>() + weight_share(loss, 1, 3).item<double>(), 0.7);
}

}  // namespace
}  // namespace ls::train
