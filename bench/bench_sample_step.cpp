// Seconds per sampling step of SDXL txt2img on this machine: the CFG denoiser (UNet on the cond +
// uncond batch of 2) inside the Euler sampler, at a 64x64 latent (512x512 image), float32, full-size
// UNet with random weights (numbers are not the point; the arithmetic is the same as with real ones).
// Also the same without guidance (batch 1) as a ratio within the run. One figure per line.
// `bench_sample_step --tiny-only` runs the tiny config only.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include <torch/torch.h>

#include "sample/cfg_denoiser.h"
#include "sample/samplers.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Mean seconds per step of `steps` Euler steps (after one warm-up step).
double seconds_per_step(ls::models::SdxlUnet unet, int64_t side, double cfg, int64_t steps) {
  const auto& c = unet->config();
  const auto schedule = ls::sample::NoiseSchedule::sdxl();
  ls::sample::UnetConditioning cond{torch::randn({1, 77, c.context_dim}), torch::randn({1, c.adm_in_channels})};
  ls::sample::UnetConditioning uncond{torch::randn({1, 77, c.context_dim}), torch::randn({1, c.adm_in_channels})};
  auto denoiser = ls::sample::cfg_denoiser(unet, schedule, cond, uncond, cfg);
  const auto spec = ls::sample::parse_sampler("Euler");
  const auto warm = ls::sample::sampler_sigmas(spec, schedule, 1);
  auto x = torch::randn({1, c.in_channels, side, side});
  ls::sample::run_sampler(spec, denoiser, x * warm[0], warm, {}, {});
  const auto sigmas = ls::sample::sampler_sigmas(spec, schedule, steps);
  const auto start = std::chrono::steady_clock::now();
  ls::sample::run_sampler(spec, denoiser, x * sigmas[0], sigmas, {}, {});
  return seconds_since(start) / static_cast<double>(steps);
}

double peak_rss_gb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  const bool tiny_only = argc > 1 && std::strcmp(argv[1], "--tiny-only") == 0;
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;

  ls::models::SdxlUnet tiny{ls::models::SdxlUnetConfig::tiny()};
  tiny->eval();
  std::printf("sample_step_tiny_8x8_cfg_ms %.2f\n", 1e3 * seconds_per_step(tiny, 8, 7.0, 20));
  std::fflush(stdout);
  if (tiny_only) return 0;

  ls::models::SdxlUnet unet{ls::models::SdxlUnetConfig{}};
  unet->eval();
  const double with_cfg = seconds_per_step(unet, 64, 7.0, 3);
  std::printf("sample_step_64x64_cfg_fp32_s %.2f\n", with_cfg);
  std::fflush(stdout);
  const double without = seconds_per_step(unet, 64, 1.0, 3);
  std::printf("sample_step_64x64_nocfg_fp32_s %.2f\n", without);
  std::printf("cfg_over_nocfg_ratio %.3f\n", with_cfg / without);
  std::printf("peak_rss_gb %.2f\n", peak_rss_gb());
  return 0;
}
