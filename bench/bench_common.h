// Helpers every bench program shares: clocks that wait for the device, peak host and GPU memory,
// a random full-size (or tiny) SDXL on a device and dtype, and a small `--key value` parser.
// Header-only on purpose: CMakeLists.txt builds each bench/*.cpp as its own program, so a shared
// .cpp would have to be linked into each; these are a few lines apiece.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <torch/cuda.h>
#include <torch/torch.h>

// The CUDA caching allocator's statistics live in c10_cuda; a CPU-only libtorch has neither the
// header's dependencies (cuda_runtime_api.h) nor the library, so the GPU figures compile away there.
#if __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#define LS_BENCH_CUDA 1
#else
#define LS_BENCH_CUDA 0
#endif

#include "core/error.h"
#include "core/strings.h"
#include "models/sdxl_model.h"
#include "nn/layers.h"

namespace ls::bench {

using Clock = std::chrono::steady_clock;

/// Waits for the device's queued work; a no-op on the CPU.
inline void sync(c10::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Seconds `run` takes once the device has finished it (the device is idle before the clock starts).
template <typename Fn>
double timed(c10::Device device, Fn&& run) {
  sync(device);
  const auto start = Clock::now();
  run();
  sync(device);
  return seconds_since(start);
}

/// One figure line, "name value", flushed at once (a run cut short keeps what it printed).
inline void print_figure(const std::string& name, double value, int decimals) {
  std::printf("%s %.*f\n", name.c_str(), decimals, value);
  std::fflush(stdout);
}

inline double median(std::vector<double> v) {
  LS_CHECK(!v.empty(), "bench: median of no values");
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// The process's peak resident set, KiB (Linux ru_maxrss).
inline long peak_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

/// The CUDA caching allocator's view of one device, MiB: what tensors hold (allocated) and what
/// the allocator took from the driver (reserved, the number nvidia-smi comes close to).
struct GpuMemory {
  double allocated_mb = 0, peak_allocated_mb = 0, peak_reserved_mb = 0;
};

inline GpuMemory gpu_memory(c10::Device device) {
  GpuMemory m;
#if LS_BENCH_CUDA
  if (!device.is_cuda()) return m;
  const auto index = device.has_index() ? device.index() : c10::cuda::current_device();
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
  const auto all = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  const double mib = 1024.0 * 1024.0;
  m.allocated_mb = static_cast<double>(stats.allocated_bytes[all].current) / mib;
  m.peak_allocated_mb = static_cast<double>(stats.allocated_bytes[all].peak) / mib;
  m.peak_reserved_mb = static_cast<double>(stats.reserved_bytes[all].peak) / mib;
#else
  (void)device;
#endif
  return m;
}

/// Starts the peaks of gpu_memory() afresh from what is held now.
inline void reset_gpu_peaks(c10::Device device) {
#if LS_BENCH_CUDA
  if (device.is_cuda())
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : c10::cuda::current_device());
#else
  (void)device;
#endif
}

/// The parts of `model` that are present (create() leaves the others empty).
inline std::vector<std::shared_ptr<torch::nn::Module>> parts_of(const models::SdxlModel& model) {
  std::vector<std::shared_ptr<torch::nn::Module>> parts;
  if (model.unet) parts.push_back(model.unet.ptr());
  if (model.te1) parts.push_back(model.te1.ptr());
  if (model.te2) parts.push_back(model.te2.ptr());
  if (model.vae) parts.push_back(model.vae.ptr());
  return parts;
}

/// The asked-for SDXL parts with random weights, N(0, 0.02) (numbers are not the point; the
/// arithmetic is that of real weights), on `device` in `dtype`, requires_grad off. The parts are
/// made uninitialised (no 2.6e9 Kaiming draws), moved, then drawn where they live (fast on a GPU).
inline models::SdxlModel random_sdxl(const models::SdxlConfig& config, models::Components parts, c10::Device device,
                                     c10::ScalarType dtype) {
  models::SdxlModel model;
  {
    nn::SkipInitGuard skip;
    model = models::SdxlModel::create(config, parts);
  }
  model.to(device, dtype);
  torch::NoGradGuard no_grad;
  for (const auto& part : parts_of(model)) {
    for (auto& p : part->parameters()) {
      p.normal_(0, 0.02);
      p.set_requires_grad(false);
    }
  }
  return model;
}

/// The python that runs a bench's reference half: `given` when not empty, else the torch venv's
/// (scripts/torch-venv, run from the repository root); "" when there is none.
inline std::string reference_python(const std::string& given) {
  std::string python = given;
  if (python.empty()) {
    FILE* p = popen("scripts/torch-venv 2>/dev/null", "r");
    char buf[512] = {0};
    if (p && std::fgets(buf, sizeof buf, p)) python = core::trim(buf) + "/bin/python";
    if (p) pclose(p);
  }
  return !python.empty() && std::filesystem::exists(python) ? python : "";
}

/// Runs a reference half's command (its stderr discarded) and calls figure(name, value) for each
/// "name value" line it prints; returns how many it printed (0: it did not run).
template <typename Fn>
int reference_figures(const std::string& cmd, Fn&& figure) {
  std::fflush(stdout);  // ours first, in order
  FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
  int lines = 0;
  char buf[512];
  while (p && std::fgets(buf, sizeof buf, p)) {
    const std::string l = core::trim(buf);
    const size_t space = l.find(' ');
    if (space == std::string::npos) continue;
    figure(l.substr(0, space), l.substr(space + 1));
    std::fflush(stdout);
    ++lines;
  }
  if (p) pclose(p);
  return lines;
}

/// `--key value` options, bare `--flag`s and bare words (e.g. the old `tiny` mode), each checked
/// against the names the program takes.
class Args {
 public:
  Args(int argc, char** argv, const std::set<std::string>& options, const std::set<std::string>& flags,
       const std::set<std::string>& words = {}) {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a.rfind("--", 0) != 0) {
        LS_CHECK(words.count(a), "bench: unexpected argument '", a, "'; see the comment at the top of the source");
        words_.push_back(a);
        continue;
      }
      const std::string key = a.substr(2);
      if (flags.count(key)) {
        values_[key] = "true";
      } else {
        LS_CHECK(options.count(key), "bench: unknown option '", a, "'; see the comment at the top of the source");
        LS_CHECK(i + 1 < argc, "bench: option '", a, "' needs a value");
        values_[key] = argv[++i];
      }
    }
  }

  bool any() const { return !values_.empty(); }
  bool has(const std::string& key) const { return values_.count(key) > 0; }
  bool word(const std::string& w) const { return std::find(words_.begin(), words_.end(), w) != words_.end(); }
  std::string text(const std::string& key, const std::string& fallback) const {
    const auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  int64_t integer(const std::string& key, int64_t fallback, int64_t min = 1) const {
    return has(key) ? at_least(key, values_.at(key), min) : fallback;
  }
  /// "1,8" -> {1, 8}.
  std::vector<int64_t> integers(const std::string& key, std::vector<int64_t> fallback) const {
    if (!has(key)) return fallback;
    std::vector<int64_t> out;
    const std::string& list = values_.at(key);
    for (size_t begin = 0; begin <= list.size();) {
      const size_t end = std::min(list.find(',', begin), list.size());
      out.push_back(at_least(key, list.substr(begin, end - begin), 1));
      begin = end + 1;
    }
    return out;
  }

 private:
  static int64_t at_least(const std::string& key, const std::string& text, int64_t min) {
    const int64_t v = core::int64_or_fail(text, "bench: --" + key);
    LS_CHECK(v >= min, "bench: --", key, " must be at least ", min, ", got ", v);
    return v;
  }
  std::map<std::string, std::string> values_;
  std::vector<std::string> words_;
};

/// Runs a bench's main body; an ls::Error (bad option, no CUDA device) becomes one line and exit 2.
template <typename Fn>
int run_main(Fn&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}

}  // namespace ls::bench
