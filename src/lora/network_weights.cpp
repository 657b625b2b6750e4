#include "lora/network_weights.h"

#include <set>

#include <torch/torch.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "models/checkpoint_kind.h"

namespace ls::lora {
namespace {

// kohya: lora_name = key.split(".")[0].
std::string weights_module_of(const std::string& key) { return key.substr(0, key.find('.')); }

void weights_require_lora(const io::SafetensorsReader& reader, const std::string& path) {
  const models::CheckpointKind kind = models::detect_checkpoint_kind(reader.tensors());
  LS_CHECK(kind == models::CheckpointKind::kLora, path, ": network_weights must be a LoRA file, but this is ",
           models::describe(kind));
}

std::string weights_first_names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 3; ++i) out += (i ? ", " : "") + names[i];
  return out + (names.size() > 3 ? ", ..." : "");
}

}  // namespace

std::map<std::string, ModuleRank> module_ranks_from_file(const std::string& path) {
  io::SafetensorsReader reader(path);
  weights_require_lora(reader, path);
  std::map<std::string, ModuleRank> ranks;
  std::map<std::string, double> alphas;
  for (const io::TensorInfo& info : reader.tensors()) {
    if (info.name.find('.') == std::string::npos) continue;
    const std::string name = weights_module_of(info.name);
    // kohya tests `"alpha" in key` before `"lora_down" in key`.
    if (info.name.find("alpha") != std::string::npos) {
      alphas[name] = reader.load(info.name).item<double>();
    } else if (info.name.find("lora_down") != std::string::npos) {
      LS_CHECK(!info.shape.empty() && info.shape[0] > 0, path, ": ", info.name, " has no rank dimension");
      ranks[name].rank = info.shape[0];
    }
  }
  LS_CHECK(!ranks.empty(), path, ": no lora_down weights, so dim_from_weights finds no ranks (a LyCORIS file? ",
           "networks.lora reads LoRA/LoCon files only)");
  for (auto& [name, r] : ranks) {
    auto it = alphas.find(name);
    r.alpha = it == alphas.end() ? static_cast<double>(r.rank) : it->second;  // an old LoRA without alpha
  }
  return ranks;
}

WeightsLoadReport load_network_weights(const std::string& path, LoraNetworkImpl& network) {
  io::SafetensorsReader reader(path);
  weights_require_lora(reader, path);
  std::map<std::string, torch::Tensor> live;  // the network's tensors (lora_state aliases them)
  std::set<std::string> network_modules;
  for (auto& [key, t] : lora_state(network)) {
    network_modules.insert(weights_module_of(key));
    live.emplace(key, t);
  }
  // load_state_dict checks every shape; report the first module that differs and how many do.
  std::set<std::string> file_modules, differing;
  std::string first;
  for (const io::TensorInfo& info : reader.tensors()) {
    file_modules.insert(weights_module_of(info.name));
    auto it = live.find(info.name);
    if (it == live.end() || it->second.sizes() == c10::IntArrayRef(info.shape)) continue;
    if (first.empty())
      first = str_cat(info.name, " has shape ", c10::IntArrayRef(info.shape), " but the network being trained has ",
                      it->second.sizes());
    differing.insert(weights_module_of(info.name));
  }
  LS_CHECK(differing.empty(), path, ": ", first, " (", differing.size(), " module", differing.size() == 1 ? "" : "s",
           " differ); set network_dim / conv_dim to the file's ranks, or dim_from_weights = true to take each ",
           "module's rank and alpha from the file");
  WeightsLoadReport report;
  torch::NoGradGuard no_grad;
  for (const io::TensorInfo& info : reader.tensors()) {
    auto it = live.find(info.name);
    if (it != live.end()) it->second.copy_(reader.load(info.name));
  }
  for (const std::string& m : file_modules)
    (network_modules.count(m) ? report.loaded : report.unexpected).push_back(m);
  for (const std::string& m : network_modules)
    if (!file_modules.count(m)) report.missing.push_back(m);
  return report;
}

std::vector<std::string> weights_load_summary(const std::string& path, const WeightsLoadReport& report,
                                              const LoraNetworkOptions& options) {
  struct PartLines {
    std::vector<std::string> unexpected, missing;
  };
  const char* const prefixes[] = {"lora_unet", "lora_te1", "lora_te2"};
  auto part_of = [&](const std::string& name) -> std::string {
    for (const char* p : prefixes)
      if (name.rfind(std::string(p) + "_", 0) == 0) return p;
    return "";
  };
  std::map<std::string, PartLines> parts;  // "" holds names of no SDXL part
  for (const std::string& m : report.unexpected) parts[part_of(m)].unexpected.push_back(m);
  for (const std::string& m : report.missing) parts[part_of(m)].missing.push_back(m);
  std::vector<std::string> lines;
  for (const auto& [part, p] : parts) {
    const bool unet = part == "lora_unet";
    const bool trained = !part.empty() && (unet ? options.unet : options.text_encoders);
    if (!p.unexpected.empty()) {
      const size_t n = p.unexpected.size();
      if (part.empty()) {
        lines.push_back(str_cat(path, ": ", n, " module", n == 1 ? "" : "s", " of no SDXL part left out (first: ",
                                weights_first_names(p.unexpected), ")"));
      } else if (!trained) {
        lines.push_back(str_cat(path, ": ", n, " ", part, " modules left out: the ",
                                unet ? "U-Net is not trained (network_train_text_encoder_only)"
                                     : "text encoders are not trained (network_train_unet_only)"));
      } else {
        lines.push_back(str_cat(path, ": ", n, " ", part, " module", n == 1 ? " is" : "s are",
                                " not in the network being trained and left out (first: ", weights_first_names(p.unexpected),
                                "); dim_from_weights = true trains the file's modules"));
      }
    }
    if (!p.missing.empty()) {
      const size_t n = p.missing.size();
      lines.push_back(str_cat(path, ": ", n, " ", part, " module", n == 1 ? " of the network is" : "s of the network are",
                              " not in the file and start from a fresh initialisation (first: ",
                              weights_first_names(p.missing), ")"));
    }
  }
  return lines;
}

}  // namespace ls::lora
