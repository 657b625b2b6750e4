// SDXL UNet forward cost on this machine, one figure per line ("name value").
// Tiny config (averaged), then full size with random weights: construction, one forward at a
// 16x16 latent (B=1, context [1,77,2048], y [1,2816], float32; again with denormals flushed),
// and the process's peak RSS.
// `bench_unet_forward --tiny-only` skips the full-size part (~10 GB of weights).
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

#include <torch/torch.h>

#include "bench_common.h"
#include "models/sdxl_unet.h"

namespace {

using ls::bench::seconds_since;

// Returns {first call, mean of the next `repeats`} in seconds.
std::pair<double, double> forward_seconds(ls::models::SdxlUnet& unet, int64_t side, int repeats) {
  const auto& c = unet->config();
  auto x = torch::randn({1, c.in_channels, side, side});
  auto t = torch::tensor({500}, torch::kLong);
  auto context = torch::randn({1, 77, c.context_dim});
  auto y = torch::randn({1, c.adm_in_channels});
  torch::NoGradGuard no_grad;
  auto start = std::chrono::steady_clock::now();
  unet(x, t, context, y);  // first call: allocations and kernel selection
  double first = seconds_since(start);
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) unet(x, t, context, y);
  return {first, seconds_since(start) / repeats};
}

}  // namespace

int main(int argc, char** argv) {
  bool tiny_only = argc > 1 && std::strcmp(argv[1], "--tiny-only") == 0;
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  torch::manual_seed(0);

  ls::models::SdxlUnet tiny{ls::models::SdxlUnetConfig::tiny()};
  std::printf("unet_tiny_forward_16x16_fp32_ms %.2f\n", 1e3 * forward_seconds(tiny, 16, 20).second);
  std::fflush(stdout);
  if (tiny_only) return 0;

  auto start = std::chrono::steady_clock::now();
  ls::models::SdxlUnet unet{ls::models::SdxlUnetConfig{}};
  std::printf("unet_full_init_random_s %.2f\n", seconds_since(start));
  std::fflush(stdout);
  auto [first, warm] = forward_seconds(unet, 16, 2);
  std::printf("unet_forward_16x16_fp32_first_s %.2f\n", first);
  std::printf("unet_forward_16x16_fp32_s %.2f\n", warm);
  std::fflush(stdout);
  // Denormal inputs slow x86 float math by orders of magnitude; flushing them changes results
  // only below 1e-38.
  at::globalContext().setFlushDenormal(true);
  std::printf("unet_forward_16x16_fp32_flush_denormal_s %.2f\n", forward_seconds(unet, 16, 1).second);
  std::printf("unet_peak_rss_gb %.2f\n", static_cast<double>(ls::bench::peak_rss_kb()) / (1024.0 * 1024.0));
  return 0;
}
