#include "nn/load_report.h"

#include <set>
#include <unordered_map>

#include <torch/torch.h>

#include "io/safetensors.h"

namespace ls::nn {

std::string shape_str(c10::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {
std::string list_of(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < 5; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > 5) s += ", ... " + std::to_string(items.size() - 5) + " more";
  return s;
}
}  // namespace

std::string LoadReport::summary() const {
  std::string s;
  auto add = [&](const std::string& head, const std::vector<std::string>& items) {
    if (items.empty()) return;
    s += (s.empty() ? "" : "; ") + std::to_string(items.size()) + " " + head + ": " + list_of(items);
  };
  add("missing", missing);
  add("wrong shape", misshaped);
  add("unexpected", unexpected);
  return s;
}

void load_module_state(const io::SafetensorsReader& reader, torch::nn::Module& module, LoadReport& report,
                       const LoadOptions& options) {
  std::unordered_map<std::string, torch::Tensor> targets;
  std::vector<std::string> order;  // the module's own order, for a stable "missing" list
  for (auto& p : module.named_parameters(true)) targets.emplace(p.key(), p.value()), order.push_back(p.key());
  for (auto& b : module.named_buffers(true)) targets.emplace(b.key(), b.value()), order.push_back(b.key());
  std::set<std::string> filled;
  torch::NoGradGuard no_grad;
  for (const auto& info : reader.tensors()) {
    if (info.name.rfind(options.prefix, 0) != 0) continue;
    std::string key = info.name.substr(options.prefix.size());
    if (options.ignore && options.ignore(key)) continue;
    if (options.rename) key = options.rename(key);
    auto it = targets.find(key);
    if (it == targets.end()) {
      report.unexpected.push_back(info.name);
      continue;
    }
    std::vector<int64_t> file_shape(info.shape.begin(), info.shape.end());
    if (it->second.sizes() != c10::IntArrayRef(file_shape)) {
      report.misshaped.push_back(info.name + " " + shape_str(file_shape) + " (model " +
                                 shape_str(it->second.sizes()) + ")");
      filled.insert(key);  // reported once, as mis-shaped rather than also missing
      continue;
    }
    it->second.copy_(reader.load(info.name));
    filled.insert(key);
    reader.release(info.name);
  }
  for (const auto& key : order)
    if (!filled.count(key)) report.missing.push_back(options.prefix + key);
}

}  // namespace ls::nn
