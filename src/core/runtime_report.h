// What a bug report needs about the machine and the build: lorastudio, torch, CUDA and cuDNN
// versions, the devices libtorch sees, the BLAS and the thread counts (`lorastudio version`).
#pragma once

#include <string>
#include <vector>

namespace ls::core {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  double memory_gib = 0;
  int major = 0, minor = 0;  // compute capability
};

struct RuntimeReport {
  std::string lorastudio_version;
  std::string torch_version;   // the libtorch the executable runs with
  std::string cuda_compiled;   // CUDA runtime libtorch was built against ("" for a CPU build)
  std::string cudnn;           // cuDNN found at run time ("" when none)
  bool cuda_build = false;
  std::vector<CudaDeviceInfo> cuda_devices;
  std::string cpu_capability;  // ATen's kernel level: DEFAULT, AVX2, AVX512
  std::string blas;
  int intra_op_threads = 0, inter_op_threads = 0;
};

RuntimeReport runtime_report();
/// One "key: value" line per fact.
std::string format_runtime_report(const RuntimeReport& r);

}  // namespace ls::core
