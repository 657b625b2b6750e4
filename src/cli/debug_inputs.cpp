#include "cli/debug_inputs.h"

#include "core/error.h"

namespace ls::cli {

torch::Tensor DebugInputs::get(const std::string& name, const char* help_command) const {
  LS_CHECK(reader_.contains(name), reader_.path().string(), ": input '", name, "' is missing; see `lorastudio ",
           help_command, " --help` for the inputs");
  auto t = reader_.load(name);
  return t.is_floating_point() ? t.to(device_, dtype_) : t.to(device_);
}

std::string shape_text(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
}

}  // namespace ls::cli
