// Wall time of the full-size SDXL VAE (random init, fp32, CPU): decode of a 16x16 latent and
// encode of a 128x128 image. One line per figure: median of 3 timed runs after one warm-up.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <vector>

#include <torch/torch.h>

#include "core/runtime.h"
#include "models/vae.h"

namespace {

struct Timing {
  double wall_ms;  // median
  double cpu_ms;   // process CPU time of that run (all threads): shows contention on a shared box
};

Timing median_time(const std::function<void()>& run, int reps = 3) {
  run();  // warm-up: oneDNN primitive creation, allocator
  std::vector<Timing> t;
  for (int i = 0; i < reps; ++i) {
    auto c0 = std::clock();
    auto t0 = std::chrono::steady_clock::now();
    run();
    double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    t.push_back({wall, 1000.0 * double(std::clock() - c0) / CLOCKS_PER_SEC});
  }
  std::sort(t.begin(), t.end(), [](const Timing& a, const Timing& b) { return a.wall_ms < b.wall_ms; });
  return t[t.size() / 2];
}

}  // namespace

int main() {
  ls::core::init_threads();
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  ls::models::AutoencoderKL vae(ls::models::VaeConfig{});
  vae->eval();
  auto latent = torch::randn({1, 4, 16, 16});
  auto image = torch::rand({1, 3, 128, 128}) * 2 - 1;
  auto dec = median_time([&] { vae->decode(latent); });
  std::printf("vae_decode latent 1x4x16x16 -> 128x128 fp32 cpu threads=%d: %.1f ms wall (%.1f ms cpu)\n",
              at::get_num_threads(), dec.wall_ms, dec.cpu_ms);
  auto enc = median_time([&] { vae->encode(image); });
  std::printf("vae_encode image 1x3x128x128 -> 16x16 fp32 cpu threads=%d: %.1f ms wall (%.1f ms cpu)\n",
              at::get_num_threads(), enc.wall_ms, enc.cpu_ms);
  return 0;
}
