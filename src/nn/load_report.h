// Loading a module's tensors from a safetensors file: every problem is collected (missing,
// mis-shaped and unexpected keys) and reported in one line, as llama.cpp's model loader does,
// so a wrong or truncated file is diagnosed in one run. Shared by the SDXL checkpoint loader and
// the caption models.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <c10/util/ArrayRef.h>

namespace torch::nn {
class Module;
}
namespace ls::io {
class SafetensorsReader;
}

namespace ls::nn {

/// "[a,b,c]"
std::string shape_str(c10::IntArrayRef shape);

/// Everything wrong with a file, collected over all parts.
struct LoadReport {
  std::vector<std::string> missing, unexpected, misshaped;

  bool empty() const { return missing.empty() && unexpected.empty() && misshaped.empty(); }
  /// "2 missing: a, b; 1 wrong shape: c [3] (model [4]); 7 unexpected: d, e, f, g, h, ... 2 more"
  std::string summary() const;
};

struct LoadOptions {
  /// Only file keys starting with this are read; it is removed to give the module's name.
  std::string prefix;
  /// File key (prefix removed) -> module key, for layouts older than the module's (may return the key).
  std::function<std::string(const std::string&)> rename;
  /// File keys (prefix removed) that carry nothing the module needs (recomputed buffers) are skipped.
  std::function<bool(const std::string&)> ignore;
};

/// Copies every tensor under options.prefix into the module parameter or buffer of the same name
/// (converted to its dtype and device), one tensor in memory at a time (pages released after
/// use). Problems go to `report`; module tensors no file key filled are reported missing under
/// prefix + module key.
void load_module_state(const io::SafetensorsReader& reader, torch::nn::Module& module, LoadReport& report,
                       const LoadOptions& options = {});

}  // namespace ls::nn
