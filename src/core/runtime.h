// Device, dtype and thread set-up shared by every command: parsed from CLI strings,
// never hard-coded, so the same code runs on CPU here and on CUDA elsewhere.
#pragma once

#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace ls::core {

/// "fp32" | "fp16" | "bf16" (also "float32", "float16", "bfloat16").
c10::ScalarType parse_dtype(const std::string& name);
std::string dtype_name(c10::ScalarType dtype);
/// "cpu", "cuda", "cuda:1"; fails with a clear message when CUDA is not available.
c10::Device parse_device(const std::string& name);

/// Uses OMP_NUM_THREADS when set, else every core.
void init_threads();

/// The BLAS libtorch computes with: "mkl (built into libtorch)" for the PyPI wheel, else the real
/// path of the shared BLAS loaded (e.g. ".../openblas-openmp/libblas.so.3"), else "".
std::string loaded_blas();
/// True when the loaded BLAS is the slow reference implementation.
bool blas_is_reference(const std::string& path);

}  // namespace ls::core
