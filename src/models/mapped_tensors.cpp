// Loading and fingerprinting mapped parts; see mapped_tensors.h.
#include "models/mapped_tensors.h"

#include <algorithm>
#include <unordered_map>

#include <torch/torch.h>

#include "core/error.h"
#include "core/sha256.h"
#include "io/safetensors.h"
#include "nn/load_report.h"

namespace ls::models {

void load_mapped(const std::vector<const io::SafetensorsReader*>& files, torch::nn::Module& module,
                 const MappedLoad& how, nn::LoadReport& report) {
  std::unordered_map<std::string, torch::Tensor> targets;
  std::vector<std::string> order;
  for (auto& p : module.named_parameters(true)) targets.emplace(p.key(), p.value()), order.push_back(p.key());
  for (auto& b : module.named_buffers(true)) targets.emplace(b.key(), b.value()), order.push_back(b.key());
  std::set<std::string> filled;
  torch::NoGradGuard no_grad;
  for (const io::SafetensorsReader* file : files) {
    for (const io::TensorInfo& info : file->tensors()) {
      if (how.ignore && how.ignore(info.name)) continue;
      const auto mapped = how.map->to_lorastudio(info.name);
      const auto it = mapped ? targets.find(mapped->key) : targets.end();
      if (it == targets.end()) {
        report.unexpected.push_back(how.label + info.name);
        continue;
      }
      const auto shape = to_lorastudio_shape(info.shape, mapped->transform);
      if (it->second.sizes() != c10::IntArrayRef(shape)) {
        report.misshaped.push_back(how.label + info.name + " " + nn::shape_str(info.shape) +
                                   " (model " + nn::shape_str(it->second.sizes()) + ")");
        filled.insert(mapped->key);
        continue;
      }
      LS_CHECK(!filled.count(mapped->key), how.label, info.name, ": a second tensor for ", mapped->key,
               " (the files hold it twice); remove the duplicate");
      it->second.copy_(to_lorastudio_tensor(file->load(info.name), mapped->transform));
      filled.insert(mapped->key);
      file->release(info.name);
    }
  }
  for (const auto& key : order) {
    if (filled.count(key) || how.optional.count(key)) continue;
    const auto back = how.map->to_diffusers(key);
    report.missing.push_back(how.label + (back ? back->key : key));
  }
}

std::string fingerprint_entries(std::vector<FingerprintEntry> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const FingerprintEntry& a, const FingerprintEntry& b) { return a.name < b.name; });
  core::Sha256 h;
  for (const FingerprintEntry& e : entries) {
    h.update(str_cat(e.name, " ", static_cast<int>(e.dtype), " ", e.shape.size(), "\n"));
    for (int64_t d : e.shape) h.update(str_cat(d, ","));
    h.update(e.file->tensor_bytes(*e.info));
    e.file->release(e.info->name);
  }
  return h.hex_digest();
}

std::vector<FingerprintEntry> mapped_entries(const std::vector<const io::SafetensorsReader*>& files, const KeyMap& map,
                                             const std::string& prefix,
                                             const std::function<bool(const std::string&)>& ignore) {
  std::vector<FingerprintEntry> out;
  for (const io::SafetensorsReader* file : files) {
    for (const io::TensorInfo& info : file->tensors()) {
      if (ignore && ignore(info.name)) continue;
      const auto mapped = map.to_lorastudio(info.name);
      if (!mapped) continue;  // the loader reports it; a fingerprint only identifies what is used
      out.push_back({prefix + mapped->key, info.dtype,
                     to_lorastudio_shape(info.shape, mapped->transform), file, &info});
    }
  }
  return out;
}

}  // namespace ls::models
