// One LoRA training step of the SDXL UNet on CPU, fp32, batch 1, rank 8 (default kohya targets),
// with and without gradient checkpointing: seconds per step (median of 3 after 1 warm-up) and the
// process's peak RSS. Each variant runs in its own child process so the peaks do not mix.
// `bench_train_step` = full-size SDXL at a 32x32 latent (needs ~16 GB); `bench_train_step tiny`
// = the tiny test model at 16x16 (seconds).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include <torch/torch.h>

#include "core/runtime.h"
#include "lora/network.h"
#include "models/sdxl_model.h"
#include "nn/layers.h"

namespace {

long peak_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

void run_variant(bool tiny, bool checkpointing) {
  ls::core::init_threads();
  torch::manual_seed(0);
  const ls::models::SdxlConfig config = tiny ? ls::models::SdxlConfig::tiny() : ls::models::SdxlConfig{};
  ls::models::SdxlModel model;
  {
    ls::nn::SkipInitGuard skip;  // random values below, without 2.6e9 Kaiming draws
    model = ls::models::SdxlModel::create(config, {true, false, false});
  }
  {
    torch::NoGradGuard ng;
    for (auto& p : model.unet->parameters()) p.normal_(0, 0.02);
  }
  for (auto& p : model.unet->parameters()) p.set_requires_grad(false);
  const long model_rss = peak_rss_kb();
  ls::lora::LoraNetworkOptions o;
  o.rank = 8;
  o.alpha = 1;
  o.text_encoders = false;
  ls::lora::LoraNetwork net(model, o);
  net->apply();
  model.unet->set_gradient_checkpointing(checkpointing);
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(1e-4));
  const int64_t side = tiny ? 16 : 32;
  const torch::Tensor x = torch::randn({1, 4, side, side});
  const torch::Tensor ctx = torch::randn({1, 77, config.unet.context_dim});
  const torch::Tensor y = torch::randn({1, config.unet.adm_in_channels});
  const torch::Tensor t = torch::tensor({500}, torch::kLong);
  const torch::Tensor target = torch::randn({1, 4, side, side});
  std::vector<double> seconds;
  for (int i = 0; i < 4; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const torch::Tensor loss = torch::mse_loss(model.unet->forward(x, t, ctx, y), target);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (i > 0) seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const char* name = checkpointing ? "checkpointing" : "plain";
  std::printf("train_step_%s_%s_s %.2f\n", tiny ? "tiny16" : "sdxl32", name, seconds[1]);
  std::printf("train_step_%s_%s_peak_rss_mb %.0f (model alone %.0f)\n", tiny ? "tiny16" : "sdxl32", name,
              static_cast<double>(peak_rss_kb()) / 1024.0, static_cast<double>(model_rss) / 1024.0);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const bool tiny = argc > 1 && std::strcmp(argv[1], "tiny") == 0;
  for (bool checkpointing : {false, true}) {
    const pid_t pid = fork();
    if (pid == 0) {
      run_variant(tiny, checkpointing);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "variant %s failed (status %d)\n", checkpointing ? "checkpointing" : "plain", status);
      return 1;
    }
  }
  return 0;
}
