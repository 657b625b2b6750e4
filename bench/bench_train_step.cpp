// One LoRA training step of the SDXL UNet as the trainer takes it (train/train_step: objective and
// gradient clipping; default kohya targets, AdamW; no text encoders or VAE: cached latents and
// text-encoder outputs, as with network_train_unet_only), with and without gradient checkpointing:
// seconds per step (median of the timed steps after warm-up) and the peak memory. Each (variant,
// batch) runs in its own child process so the peaks do not mix (the parent never touches CUDA: a
// CUDA context does not survive fork()).
//   bench_train_step        full-size SDXL, CPU fp32, batch 1, rank 8, 32x32 latent (needs ~16 GB)
//   bench_train_step tiny   the tiny test model at 16x16 (seconds)
// Options (any of them also prints it/s and images/s; defaults are the two modes above):
//   --device cpu|cuda[:N]  --dtype fp32|bf16|fp16   the frozen base's dtype, as `train
//                          --mixed_precision` sets it; the LoRA stays float32 (TrainSession)
//   --side N (latent side; 128 = a 1024x1024 image)  --rank N  --batch 1,8
//   --checkpointing | --plain   only that variant    --warmup N (1)  --steps N (3)
//   --beside N   then N+1 copies of each variant at once (CPU: what two runs on one machine see):
//                <prefix>_shared_s, the mean of the copies' steps, and <prefix>_shared_slowdown,
//                that over the step alone (full size needs ~12 GB per copy: use it with tiny)
//   --sd-scripts DIR   first, in the same run, kohya sd-scripts' own step for each CPU float32
//                full-size variant at batch 1 (bench_train_step_kohya.py on a checkout of
//                github.com/kohya-ss/sd-scripts, with --python PY, default the torch venv's), then
//                <prefix>_ratio_vs_kohya. Run from the repository root.
// e.g. bench_train_step --device cuda --dtype bf16 --side 128 --rank 32 --batch 1,8
// On CUDA the memory figures are the caching allocator's peaks (allocated and reserved) over the
// timed steps, model included (a variant out of GPU memory prints <prefix>_oom 1); on the CPU the
// process's peak RSS.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "bench_common.h"
#include "core/runtime.h"
#include "lora/network.h"
#include "models/sdxl_model.h"
#include "models/noise_schedule.h"
#include "train/train_step.h"

namespace {

using ls::bench::print_figure;

struct Options {
  bool tiny = false;
  bool extended = false;         // any option given: the rate figures too
  std::string device = "cpu";    // parsed in the child (parse_device initialises CUDA)
  c10::ScalarType dtype = c10::kFloat;
  int64_t side = 32, rank = 8;
  std::vector<int64_t> batches{1};
  std::vector<bool> checkpointing{false, true};
  int64_t warmup = 1, steps = 3;
  int64_t beside = 0;
  std::string sd_scripts, python;
};

Options parse_options(int argc, char** argv) {
  const ls::bench::Args a(argc, argv,
                          {"device", "dtype", "side", "rank", "batch", "warmup", "steps", "beside", "sd-scripts",
                           "python"},
                          {"checkpointing", "plain"}, {"tiny"});
  Options o;
  o.tiny = a.word("tiny");
  o.extended = a.any();
  o.device = a.text("device", "cpu");
  try {
    (void)c10::Device(o.device);  // a spelling check only; availability is the child's to check
  } catch (const c10::Error&) {
    LS_FAIL("bench: unknown device '", o.device, "'; use cpu, cuda or cuda:N");
  }
  o.dtype = ls::core::parse_dtype(a.text("dtype", "fp32"));
  o.side = a.integer("side", o.tiny ? 16 : 32);
  o.rank = a.integer("rank", 8);
  o.batches = a.integers("batch", {1});
  if (a.has("checkpointing") != a.has("plain")) o.checkpointing = {a.has("checkpointing")};
  o.warmup = a.integer("warmup", 1, 0);
  o.steps = a.integer("steps", 3);
  o.beside = a.integer("beside", 0, 0);
  o.sd_scripts = a.text("sd-scripts", "");
  o.python = a.text("python", "");
  return o;
}

/// train_step_sdxl32_plain (the old names) for the defaults; the options that differ are added:
/// train_step_sdxl128_cuda_bf16_r32_b8_checkpointing.
std::string figure_prefix(const Options& o, bool checkpointing, int64_t batch) {
  std::string p = ls::str_cat("train_step_", o.tiny ? "tiny" : "sdxl", o.side);
  if (o.device != "cpu") p += "_" + o.device.substr(0, o.device.find(':'));  // cuda:1 -> cuda
  if (o.dtype != c10::kFloat) p += "_" + ls::core::dtype_name(o.dtype);
  if (o.rank != 8) p += ls::str_cat("_r", o.rank);
  if (batch != 1) p += ls::str_cat("_b", batch);
  return p + (checkpointing ? "_checkpointing" : "_plain");
}

/// The session the trainer builds (train_session.cpp build_session), without files: frozen base in
/// the mixed-precision dtype, LoRA made beside it and moved to float32, then applied.
/// Returns the median step in seconds; prints the figures unless `quiet` (a copy run beside others).
double run_variant(const Options& o, bool checkpointing, int64_t batch, bool quiet) {
  ls::core::init_threads();
  const c10::Device device = ls::core::parse_device(o.device);
  torch::manual_seed(0);
  const ls::models::SdxlConfig config = o.tiny ? ls::models::SdxlConfig::tiny() : ls::models::SdxlConfig{};
  ls::models::SdxlModel model = ls::bench::random_sdxl(config, {true, false, false}, device, o.dtype);
  const long model_rss = ls::bench::peak_rss_kb();
  ls::lora::LoraNetworkOptions lo;
  lo.rank = o.rank;
  lo.alpha = 1;
  lo.text_encoders = false;
  ls::lora::LoraNetwork net(model, lo);
  net->to(device, torch::kFloat);
  net->apply();
  net->train();
  for (auto& p : net->parameters()) p.set_requires_grad(true);
  model.unet->set_gradient_checkpointing(checkpointing);
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(1e-4));

  const auto f32 = torch::TensorOptions().device(device).dtype(torch::kFloat);
  ls::train::StepInputs in;  // cached latents and text-encoder outputs, as the trainer loads them
  in.latents = torch::randn({batch, 4, o.side, o.side}, f32);
  in.noise = torch::randn({batch, 4, o.side, o.side}, f32);
  in.timesteps = torch::full({batch}, 500, f32.dtype(torch::kLong));
  in.context = torch::randn({batch, 77, config.unet.context_dim}, f32).to(o.dtype);
  in.y = torch::randn({batch, config.unet.adm_in_channels}, f32).to(o.dtype);
  in.loss_weights = torch::ones({batch}, f32);
  const auto schedule = ls::models::NoiseSchedule::sdxl();
  std::vector<torch::Tensor> trainable = net->parameters();
  ls::bench::sync(device);
  const ls::bench::GpuMemory held = ls::bench::gpu_memory(device);
  ls::bench::reset_gpu_peaks(device);

  // The trainer's micro_step + optimizer_step (trainer.cpp) with its defaults: one host read of
  // the loss, max_grad_norm 1, gradients set to none. fp16 runs without the loss scaler.
  std::vector<double> seconds;
  for (int64_t i = 0; i < o.warmup + o.steps; ++i) {
    const double s = ls::bench::timed(device, [&] {
      const ls::train::LossParts loss = ls::train::step_loss(model.unet, schedule, in, o.dtype, ls::train::LossOptions{});
      (void)loss.loss.item<double>();
      loss.loss.backward();
      ls::train::clip_grad_norm(trainable, 1.0);
      opt.step();
      for (torch::Tensor& p : trainable) p.mutable_grad() = torch::Tensor();
    });
    if (i >= o.warmup) seconds.push_back(s);
  }
  const double step_s = ls::bench::median(seconds);
  if (quiet) return step_s;
  const std::string p = figure_prefix(o, checkpointing, batch);
  print_figure(p + "_s", step_s, o.extended ? 4 : 2);
  if (o.extended) {
    print_figure(p + "_it_s", 1.0 / step_s, 3);
    print_figure(p + "_images_s", static_cast<double>(batch) / step_s, 3);
  }
  if (device.is_cuda()) {
    const ls::bench::GpuMemory m = ls::bench::gpu_memory(device);
    print_figure(p + "_model_gpu_mb", held.allocated_mb, 0);
    print_figure(p + "_peak_gpu_mb", m.peak_allocated_mb, 0);
    print_figure(p + "_peak_gpu_reserved_mb", m.peak_reserved_mb, 0);
  } else {
    std::printf("%s_peak_rss_mb %.0f (model alone %.0f)\n", p.c_str(),
                static_cast<double>(ls::bench::peak_rss_kb()) / 1024.0, static_cast<double>(model_rss) / 1024.0);
  }
  std::fflush(stdout);
  return step_s;
}

/// A variant that does not fit in GPU memory is a figure too: `<prefix>_oom 1` (and no step: 0).
double run_variant_or_oom(const Options& o, bool checkpointing, int64_t batch, bool quiet) {
  try {
    return run_variant(o, checkpointing, batch, quiet);
  } catch (const c10::OutOfMemoryError& e) {
    std::fprintf(stderr, "%s\n", e.what_without_backtrace());
    print_figure(figure_prefix(o, checkpointing, batch) + "_oom", 1, 0);
    std::fflush(stdout);
    return 0;
  }
}

/// kohya's seconds per step for this variant, printed as its script prints them; 0 when it is not
/// comparable (GPU, another dtype, the tiny model, batch > 1) or could not run.
double kohya_step(const Options& o, bool checkpointing, int64_t batch) {
  if (o.sd_scripts.empty() || o.tiny || o.device != "cpu" || o.dtype != c10::kFloat || batch != 1) return 0;
  const std::string python = ls::bench::reference_python(o.python);
  if (python.empty()) {
    std::printf("kohya skipped (no python; pass --python)\n");
    return 0;
  }
  const std::string cmd = ls::str_cat(python, " bench/bench_train_step_kohya.py ", o.sd_scripts, " ", o.side, " ",
                                      o.rank, " ", o.warmup, " ", o.steps, checkpointing ? " --checkpointing" : "");
  double seconds = 0;
  ls::bench::reference_figures(cmd, [&](const std::string& name, const std::string& value) {
    // train_step_32_kohya_s -> <prefix>_kohya_s, so that both variants' figures stay apart.
    const std::string what = name.substr(name.find("_kohya_") + 1);
    std::printf("%s_%s %s\n", figure_prefix(o, checkpointing, batch).c_str(), what.c_str(), value.c_str());
    if (what == "kohya_s") seconds = std::stod(value);
  });
  if (seconds <= 0) std::printf("kohya skipped (%s could not run bench/bench_train_step_kohya.py)\n", python.c_str());
  std::fflush(stdout);
  return seconds;
}

/// Runs `copies` children at once, each one variant, and returns their steps (seconds; an empty
/// list when one failed). Each child writes its step to a pipe; the first one prints the figures
/// when it runs alone.
std::vector<double> run_children(const Options& o, bool checkpointing, int64_t batch, int64_t copies) {
  std::vector<std::pair<pid_t, int>> children;
  for (int64_t i = 0; i < copies; ++i) {
    std::fflush(stdout);
    int fds[2];
    LS_CHECK(pipe(fds) == 0, "bench: pipe() failed");
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      double step = 0;
      const int rc = ls::bench::run_main([&] {
        step = run_variant_or_oom(o, checkpointing, batch, copies > 1);
        return 0;
      });
      const ssize_t wrote = write(fds[1], &step, sizeof step);
      _exit(rc == 0 && wrote == sizeof step ? 0 : 1);
    }
    close(fds[1]);
    children.emplace_back(pid, fds[0]);
  }
  std::vector<double> steps;
  bool failed = false;
  for (const auto& [pid, fd] : children) {
    double step = 0;
    const bool got = read(fd, &step, sizeof step) == sizeof step;
    close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      // e.g. out of GPU memory at a large batch without checkpointing: the other variants still run.
      std::fprintf(stderr, "variant %s failed (status %d)\n", figure_prefix(o, checkpointing, batch).c_str(), status);
      failed = true;
    }
    steps.push_back(step);
  }
  return failed ? std::vector<double>{} : steps;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::bench::run_main([&] {
    const Options o = parse_options(argc, argv);
    int failed = 0;
    for (const bool checkpointing : o.checkpointing) {
      for (const int64_t batch : o.batches) {
        const double kohya = kohya_step(o, checkpointing, batch);  // first: both models would not fit
        const std::vector<double> alone = run_children(o, checkpointing, batch, 1);
        if (alone.empty()) {
          ++failed;
          continue;
        }
        if (kohya > 0 && alone[0] > 0)
          print_figure(figure_prefix(o, checkpointing, batch) + "_ratio_vs_kohya", alone[0] / kohya, 3);
        if (o.beside == 0 || alone[0] <= 0) continue;
        const std::vector<double> shared = run_children(o, checkpointing, batch, o.beside + 1);
        if (shared.empty()) {
          ++failed;
          continue;
        }
        double mean = 0;
        for (const double s : shared) mean += s / static_cast<double>(shared.size());
        const std::string p = figure_prefix(o, checkpointing, batch);
        print_figure(ls::str_cat(p, "_shared_", shared.size(), "_s"), mean, 4);
        print_figure(ls::str_cat(p, "_shared_", shared.size(), "_slowdown"), mean / alone[0], 2);
      }
    }
    return failed ? 1 : 0;
  });
}
