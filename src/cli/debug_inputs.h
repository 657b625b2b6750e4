// The input file of the `debug` parity commands: named tensors in a safetensors file, floating ones
// converted to the compute dtype and device, integer ones (timesteps, tokens) kept as they are.
#pragma once

#include <string>

#include <torch/torch.h>

#include "io/safetensors.h"

namespace ls::cli {

class DebugInputs {
 public:
  DebugInputs(const std::string& path, c10::Device device, c10::ScalarType dtype)
      : reader_(path), device_(device), dtype_(dtype) {}
  /// The tensor `name`; a missing one is an error that names the file and `help_command`.
  torch::Tensor get(const std::string& name, const char* help_command) const;
  bool has(const std::string& name) const { return reader_.contains(name); }
  const std::string path() const { return reader_.path().string(); }

 private:
  io::SafetensorsReader reader_;
  c10::Device device_;
  c10::ScalarType dtype_;
};

/// "[2,4,8,8]"
std::string shape_text(const torch::Tensor& t);

}  // namespace ls::cli
