#include "core/runtime.h"

#include <link.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/cuda.h>

#include "core/error.h"

namespace ls::core {

c10::ScalarType parse_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32" || name == "float") return c10::kFloat;
  if (name == "fp16" || name == "float16" || name == "half") return c10::kHalf;
  if (name == "bf16" || name == "bfloat16") return c10::kBFloat16;
  LS_FAIL("unknown dtype '", name, "'; use fp32, fp16 or bf16");
}

std::string dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat: return "fp32";
    case c10::kHalf: return "fp16";
    case c10::kBFloat16: return "bf16";
    default: return c10::toString(dtype);
  }
}

c10::Device parse_device(const std::string& name) {
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const std::exception&) {
    LS_FAIL("unknown device '", name, "'; use cpu, cuda or cuda:N");
  }
  if (device.is_cuda()) {
    LS_CHECK(torch::cuda::is_available(), "device '", name,
             "' asked for, but this libtorch build has no CUDA device; use --device cpu");
  }
  return device;
}

void init_threads() {
  int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    int v = std::atoi(env);
    if (v > 0) n = v;
  }
  at::set_num_threads(n);
}

namespace {
int collect_blas(dl_phdr_info* info, size_t, void* out) {
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  if (name.find("libblas") != std::string::npos || name.find("libopenblas") != std::string::npos) {
    std::error_code ec;
    auto real = std::filesystem::canonical(name, ec);
    *static_cast<std::string*>(out) = ec ? name : real.string();
    return 1;
  }
  return 0;
}
}  // namespace

std::string loaded_blas() {
  // The PyPI wheel links MKL statically (its build config says so); a shared libblas.so.3 loaded
  // by another library (OpenCV's LAPACK pulls Debian's reference BLAS) is not torch's then.
  const std::string config = at::show_config();
  const size_t at = config.find("BLAS_INFO=");
  std::string built;
  if (at != std::string::npos) {
    const size_t begin = at + 10, end = config.find_first_of(", \n", begin);
    built = config.substr(begin, end - begin);
  }
  if (built == "mkl") return "mkl (built into libtorch)";
  std::string path;
  dl_iterate_phdr(collect_blas, &path);
  return path.empty() ? built : path;
}

bool blas_is_reference(const std::string& path) {
  return path.find("/blas/") != std::string::npos ||
         (path.find("openblas") == std::string::npos && path.find("mkl") == std::string::npos &&
          path.find("blis") == std::string::npos && !path.empty());
}

}  // namespace ls::core
