#include "core/runtime_report.h"

#include <cstdio>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <ATen/Version.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "core/runtime.h"
#include "core/strings.h"
#include "core/version.h"

namespace ls::core {
namespace {

// CUDA encodes versions as major*1000 + minor*10, cuDNN (9.x) as major*10000 + minor*100 + patch.
std::string cuda_version_text(long v) { return str_cat(v / 1000, ".", (v % 1000) / 10); }
std::string cudnn_version_text(long v) { return str_cat(v / 10000, ".", (v % 10000) / 100, ".", v % 100); }

// ATen's kernel level, as its build-config text reports it ("CPU capability usage: AVX512").
std::string cpu_capability() {
  const std::string config = at::show_config();
  const std::string key = "CPU capability usage: ";
  const size_t at = config.find(key);
  if (at == std::string::npos) return "unknown";
  const size_t begin = at + key.size();
  return config.substr(begin, config.find('\n', begin) - begin);
}

std::string gib_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

}  // namespace

RuntimeReport runtime_report() {
  RuntimeReport r;
  r.lorastudio_version = kVersion;
  r.torch_version = TORCH_VERSION;
  const at::CUDAHooksInterface& hooks = at::detail::getCUDAHooks();
  r.cuda_build = at::hasCUDA() || hooks.versionCUDART() > 0;
  if (r.cuda_build) r.cuda_compiled = cuda_version_text(hooks.versionCUDART());
  if (torch::cuda::is_available()) {
    if (const long v = hooks.versionRuntimeCuDNN(); v > 0) r.cudnn = cudnn_version_text(v);
    for (int i = 0; i < static_cast<int>(torch::cuda::device_count()); ++i) {
      const cudaDeviceProp* p = at::cuda::getDeviceProperties(i);
      r.cuda_devices.push_back({i, p->name, static_cast<double>(p->totalGlobalMem) / (1024.0 * 1024.0 * 1024.0),
                                p->major, p->minor});
    }
  }
  r.cpu_capability = cpu_capability();
  r.blas = loaded_blas();
  r.intra_op_threads = at::get_num_threads();
  r.inter_op_threads = at::get_num_interop_threads();
  return r;
}

std::string format_runtime_report(const RuntimeReport& r) {
  std::string s = str_cat("lorastudio: ", r.lorastudio_version, "\n", "torch: ", r.torch_version, "\n");
  s += str_cat("cuda: ", r.cuda_build ? r.cuda_compiled : std::string("no (CPU-only libtorch)"), "\n");
  s += str_cat("cudnn: ", r.cudnn.empty() ? std::string("none loaded") : r.cudnn, "\n");
  s += str_cat("cuda devices: ", r.cuda_devices.size(), "\n");
  for (const CudaDeviceInfo& d : r.cuda_devices) {
    s += str_cat("  cuda:", d.index, ": ", d.name, ", ", gib_text(d.memory_gib), " GiB, compute ", d.major,
                 ".", d.minor, "\n");
  }
  s += str_cat("cpu kernels: ", r.cpu_capability, "\n", "blas: ", r.blas, "\n");
  s += str_cat("threads: ", r.intra_op_threads, " intra-op, ", r.inter_op_threads, " inter-op\n");
  return s;
}

}  // namespace ls::core
