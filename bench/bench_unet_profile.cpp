// Where a full-size SDXL UNet evaluation spends its time, against the machine's limit. Prints
// the measured sgemm peak (torch::mm on square float32 matrices, best of a few sizes), then one
// no-grad UNet forward (random weights) timed whole and by ATen operator: for each top-level op
// (what the model code calls: aten::linear, aten::conv2d, ...) its seconds, share and, where it
// multiplies matrices, its GFLOP/s and fraction of the sgemm peak; then the ten largest "self"
// times (an op's time less that of the ops it called: where the time really goes, e.g.
// aten::mkldnn_convolution under aten::conv2d). One figure per line.
//   bench_unet_profile [--side 64] [--batch 2] [--dtype fp32] [--repeats 1] [--model sdxl|tiny]
//   bench_unet_profile --train [--side 32] [--batch 1] [--rank 8]   one LoRA training step instead
//                      (bench_train_step's: default kohya targets, loss, backward; FLOPs counted
//                      are the forward's, the backward's ops appear by name)
//   --ab   instead of the profile: the step timed `repeats` (3) times with the small convolutions by
//          GEMM (lorastudio's choice, nn::conv2d) and as many with every convolution through
//          at::conv2d (oneDNN), alternately so that the machine's drift hits both; medians, ratio
// --batch 2 at --side 64 is one CFG sampling step at 512x512; the FLOP count is that of the
// operators themselves (2*M*N*K for matrix products and convolutions, 4*B*H*N*M*D for attention).
#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "bench_common.h"
#include "core/error.h"
#include "core/runtime.h"
#include "lora/network.h"
#include "models/noise_schedule.h"
#include "nn/functional.h"
#include "models/sdxl_unet.h"
#include "train/train_step.h"

namespace {

using ls::bench::print_figure;
using Clock = std::chrono::steady_clock;

struct OpTotals {
  double seconds = 0, flops = 0;
  int64_t calls = 0;
};

struct Frame {
  Clock::time_point start;
  double child_seconds = 0;
  std::string key;  // op_shape() of a top-level op
  double flops = 0;
};

// Filled by the RecordFunction callbacks on the thread that runs the model (the intra-op worker
// threads call no operators of their own, and those that do are not counted twice).
struct Profile {
  std::thread::id thread;
  std::vector<Frame> stack;
  std::map<std::string, OpTotals> top, self, shapes;
};
Profile* g_profile = nullptr;

// What a FLOP op's inputs say (inputs are readable only in the start callback): its shape, e.g.
// "linear 512x1280x10240" (M x K x N) or "conv2d 2x640x32x32 k3 -> 640", and its FLOPs.
struct OpShape {
  std::string key;
  double flops = 0;
};

OpShape op_shape(const at::RecordFunction& fn) {
  const std::string name = fn.name();
  const auto inputs = fn.inputs();
  if (inputs.size() < 2 || !inputs[0].isTensor() || !inputs[1].isTensor()) return {};
  const auto& a = inputs[0].toTensor();
  const auto& b = inputs[1].toTensor();
  if (name == "aten::linear") {
    return {ls::str_cat("linear ", a.numel() / a.size(-1), "x", b.size(1), "x", b.size(0)),
            2.0 * static_cast<double>(a.numel()) * b.size(0)};
  }
  if (name == "aten::conv2d" && a.dim() == 4 && b.dim() == 4 && inputs.size() >= 5) {
    const auto stride = inputs[3].toIntVector(), padding = inputs[4].toIntVector();
    const auto out_side = [&](int64_t in, int64_t k, size_t i) {
      const int64_t s = stride.size() > i ? stride[i] : stride.at(0);
      const int64_t p = padding.size() > i ? padding[i] : padding.at(0);
      return (in + 2 * p - k) / s + 1;
    };
    const double out = static_cast<double>(a.size(0)) * b.size(0) * out_side(a.size(2), b.size(2), 0) *
                       out_side(a.size(3), b.size(3), 1);
    return {ls::str_cat("conv2d ", a.size(0), "x", a.size(1), "x", a.size(2), "x", a.size(3), " k", b.size(2), "s",
                        stride.at(0), " -> ", b.size(0)),
            2.0 * out * static_cast<double>(b.numel() / b.size(0))};
  }
  if (name == "aten::scaled_dot_product_attention" && a.dim() == 4) {
    // q [B, H, N, D], k [B, H, M, D]: Q K^T and P V, 2*N*M*D each.
    return {ls::str_cat("sdpa ", a.size(0), "x", a.size(1), "x", a.size(2), "x", a.size(3), " kv ", b.size(2)),
            4.0 * static_cast<double>(a.numel()) * b.size(-2)};
  }
  if (name == "aten::matmul" || name == "aten::mm" || name == "aten::bmm") {
    return {"", 2.0 * static_cast<double>(a.numel()) * b.size(-1)};
  }
  return {};
}

std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn) {
  if (!g_profile || std::this_thread::get_id() != g_profile->thread) return nullptr;
  Frame frame;
  if (g_profile->stack.empty()) {
    OpShape shape = op_shape(fn);
    frame.key = std::move(shape.key);
    frame.flops = shape.flops;
  }
  frame.start = Clock::now();
  g_profile->stack.push_back(std::move(frame));
  return nullptr;
}

void on_exit(const at::RecordFunction& fn, at::ObserverContext*) {
  if (!g_profile || std::this_thread::get_id() != g_profile->thread || g_profile->stack.empty()) return;
  const Frame frame = std::move(g_profile->stack.back());
  g_profile->stack.pop_back();
  const double seconds = std::chrono::duration<double>(Clock::now() - frame.start).count();
  auto& self = g_profile->self[fn.name()];
  self.seconds += seconds - frame.child_seconds;
  ++self.calls;
  if (!g_profile->stack.empty()) {
    g_profile->stack.back().child_seconds += seconds;
    return;
  }
  auto& top = g_profile->top[fn.name()];
  top.seconds += seconds;
  top.flops += frame.flops;
  ++top.calls;
  if (!frame.key.empty()) {
    auto& shape = g_profile->shapes[frame.key];
    shape.seconds += seconds;
    shape.flops += frame.flops;
    ++shape.calls;
  }
}

/// GFLOP/s of torch::mm on n x n float32 matrices, best of `repeats` (the first call warms up).
double sgemm_gflops(int64_t n, int repeats) {
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  auto c = torch::mm(a, b);
  double best = 0;
  for (int i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    torch::mm_out(c, a, b);
    best = std::max(best, 2.0 * n * n * n / std::chrono::duration<double>(Clock::now() - start).count() / 1e9);
  }
  return best;
}

std::vector<std::pair<std::string, OpTotals>> by_time(const std::map<std::string, OpTotals>& m) {
  std::vector<std::pair<std::string, OpTotals>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.second.seconds > y.second.seconds; });
  return v;
}

// "aten::scaled_dot_product_attention" -> "scaled_dot_product_attention"
std::string short_name(const std::string& op) {
  const auto colon = op.rfind("::");
  return colon == std::string::npos ? op : op.substr(colon + 2);
}

int bench(const ls::bench::Args& args) {
  ls::core::init_threads();
  const bool train = args.has("train");
  const int64_t side = args.integer("side", train ? 32 : 64), batch = args.integer("batch", train ? 1 : 2),
                repeats = args.integer("repeats", 1);
  const auto dtype = ls::core::parse_dtype(args.text("dtype", "fp32"));
  const bool tiny = args.text("model", "sdxl") == "tiny";
  const std::string tag = std::string(train ? "train_step_" : "unet_forward_") + std::to_string(side) + "x" +
                          std::to_string(side) + "_b" + std::to_string(batch) + "_" + ls::core::dtype_name(dtype);
  std::printf("threads %d\n", at::get_num_threads());

  // The machine's clock and neighbours move the figure by +-20 % from minute to minute: the peak
  // is the best of several sizes and repeats, measured before and again after the model.
  double peak = 0;
  const auto measure_peak = [&](const char* when) {
    for (const int64_t n : {1024, 2048, 4096}) {
      const double g = sgemm_gflops(n, 5);
      print_figure(ls::str_cat("sgemm_", n, "_", when, "_gflops"), g, 1);
      peak = std::max(peak, g);
    }
  };
  measure_peak("before");

  torch::manual_seed(0);
  const auto config = tiny ? ls::models::SdxlConfig::tiny() : ls::models::SdxlConfig{};
  auto model = ls::bench::random_sdxl(config, ls::models::Components{true, false, false}, c10::kCPU, dtype);
  auto unet = model.unet;
  const auto& c = unet->config();
  const auto x = torch::randn({batch, c.in_channels, side, side}).to(dtype);
  const auto t = torch::full({batch}, 500, torch::kLong);
  const auto context = torch::randn({batch, 77, c.context_dim}).to(dtype);
  const auto y = torch::randn({batch, c.adm_in_channels}).to(dtype);
  std::function<void()> run = [&] {
    torch::NoGradGuard no_grad;
    unet(x, t, context, y);
  };
  // As bench_train_step: LoRA on the default kohya targets in float32, loss and backward.
  std::shared_ptr<ls::lora::LoraNetworkImpl> net;
  ls::train::StepInputs in;
  const auto schedule = ls::models::NoiseSchedule::sdxl();
  if (train) {
    ls::lora::LoraNetworkOptions lo;
    lo.rank = args.integer("rank", 8);
    lo.alpha = 1;
    lo.text_encoders = false;
    net = std::make_shared<ls::lora::LoraNetworkImpl>(model, lo);
    net->to(torch::kFloat);
    net->apply();
    net->train();
    for (auto& p : net->parameters()) p.set_requires_grad(true);
    in.latents = x.to(torch::kFloat);
    in.noise = torch::randn_like(in.latents);
    in.timesteps = t;
    in.context = context;
    in.y = y;
    in.loss_weights = torch::ones({batch});
    run = [&] {
      const auto loss = ls::train::step_loss(unet, schedule, in, dtype, ls::train::LossOptions{});
      loss.loss.backward();
      for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
    };
  }
  run();  // warm-up: first-call allocations and kernel choices
  if (args.has("ab")) {
    std::vector<double> gemm, direct;
    for (int64_t i = 0; i < std::max<int64_t>(repeats, 3); ++i) {
      auto start = Clock::now();
      run();
      gemm.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      ls::nn::DirectConvGuard all_direct;
      start = Clock::now();
      run();
      direct.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    print_figure(tag + "_small_conv_gemm_s", ls::bench::median(gemm), 2);
    print_figure(tag + "_all_conv_onednn_s", ls::bench::median(direct), 2);
    print_figure(tag + "_gemm_over_onednn_ratio", ls::bench::median(gemm) / ls::bench::median(direct), 3);
    return 0;
  }

  Profile profile;
  profile.thread = std::this_thread::get_id();
  double plain = 1e30;
  for (int64_t i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    run();
    plain = std::min(plain, std::chrono::duration<double>(Clock::now() - start).count());
  }
  print_figure(tag + "_s", plain, 2);

  g_profile = &profile;
  const auto handle = at::addGlobalCallback(
      at::RecordFunctionCallback(on_enter, on_exit).needsInputs(true).scopes(
          {at::RecordScope::FUNCTION}));
  const auto start = Clock::now();
  run();
  const double profiled = std::chrono::duration<double>(Clock::now() - start).count();
  at::removeCallback(handle);
  g_profile = nullptr;

  measure_peak("after");
  print_figure("sgemm_peak_gflops", peak, 1);
  double flops = 0;
  for (const auto& [name, op] : profile.top) flops += op.flops;
  print_figure(tag + "_tflop", flops / 1e12, 3);
  print_figure(tag + "_gflops", flops / plain / 1e9, 1);
  print_figure(tag + "_fraction_of_sgemm_peak", flops / plain / 1e9 / peak, 3);
  print_figure(tag + "_profiled_s", profiled, 2);
  for (const auto& [name, op] : by_time(profile.top)) {
    if (op.seconds < 0.005 * profiled) continue;
    const std::string p = "top_" + short_name(name);
    std::printf("%s_s %.3f (%.1f %%, %lld calls", p.c_str(), op.seconds, 100 * op.seconds / profiled,
                static_cast<long long>(op.calls));
    if (op.flops > 0)
      std::printf(", %.1f GFLOP/s = %.2f of peak", op.flops / op.seconds / 1e9, op.flops / op.seconds / 1e9 / peak);
    std::printf(")\n");
  }
  int shown = 0;
  for (const auto& [name, op] : by_time(profile.self)) {
    if (shown++ == 10) break;
    std::printf("self_%s_s %.3f (%.1f %%, %lld calls)\n", short_name(name).c_str(), op.seconds,
                100 * op.seconds / profiled, static_cast<long long>(op.calls));
  }
  shown = 0;
  for (const auto& [key, op] : by_time(profile.shapes)) {
    if (shown++ == 16) break;
    std::printf("shape %s: %.3f s (%.1f %%, %lld calls, %.1f GFLOP/s = %.2f of peak)\n", key.c_str(), op.seconds,
                100 * op.seconds / profiled, static_cast<long long>(op.calls), op.flops / op.seconds / 1e9,
                op.flops / op.seconds / 1e9 / peak);
  }
  print_figure("peak_rss_gb", static_cast<double>(ls::bench::peak_rss_kb()) / (1024.0 * 1024.0), 2);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::bench::run_main(
      [&] { return bench(ls::bench::Args(argc, argv, {"side", "batch", "dtype", "repeats", "model", "rank"},
                                         {"train", "ab"})); });
}
