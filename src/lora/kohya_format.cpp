#include "lora/kohya_format.h"

#include <chrono>
#include <ctime>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "core/sha256.h"
#include "core/version.h"
#include "io/safetensors.h"
#include "io/python_text.h"
#include "io/safetensors_header.h"
#include "lora/adapters.h"
#include "models/checkpoint_kind.h"

namespace ls::lora {

namespace {

constexpr const char* kAlphaKey = "alpha";

std::string format_float(double v) {
  // Python's str(float): 4.0, 0.0001, 1e-05 ...
  std::ostringstream s;
  s.precision(17);
  s << v;
  std::string text = s.str();
  double back = std::stod(text);
  for (int p = 1; p <= 17; ++p) {
    std::ostringstream t;
    t.precision(p);
    t << v;
    if (std::stod(t.str()) == back) {
      text = t.str();
      break;
    }
  }
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", std::localtime(&t));
  return buf;
}

}  // namespace

std::map<std::string, std::string> network_metadata(const LoraNetworkOptions& o, const std::string& title,
                                                    int64_t resolution_h, int64_t resolution_w) {
  std::map<std::string, std::string> m;
  m["ss_network_module"] = o.lycoris ? "lycoris.kohya" : "networks.lora";
  m["ss_network_dim"] = std::to_string(o.rank);
  m["ss_network_alpha"] = format_float(o.alpha);
  nlohmann::json args = nlohmann::json::object();
  if (o.conv_rank > 0) {
    args["conv_dim"] = std::to_string(o.conv_rank);
    args["conv_alpha"] = format_float(o.conv_alpha);
  }
  if (o.rank_dropout > 0) args["rank_dropout"] = format_float(o.rank_dropout);
  if (o.module_dropout > 0) args["module_dropout"] = format_float(o.module_dropout);
  if (!o.network_args.empty()) {
    // train_network.py: json.dumps of the network_args split at the first '=' (values kept as
    // the text given), plus its LyCORIS workaround "dropout": network_dropout (None when unset).
    nlohmann::ordered_json given = nlohmann::ordered_json::object();
    for (const std::string& a : o.network_args) {
      const auto eq = a.find('=');
      given[a.substr(0, eq)] = eq == std::string::npos ? std::string() : a.substr(eq + 1);
    }
    // (kohya skips it with dim_from_weights, whose ranks come as module_ranks.)
    if (!given.contains("dropout") && !o.module_ranks)
      given["dropout"] = o.dropout > 0 ? nlohmann::ordered_json(o.dropout) : nullptr;
    m["ss_network_args"] = io::python_json_dumps(given);
  } else if (!args.empty()) {
    m["ss_network_args"] = args.dump();
  }
  if (o.dropout > 0) m["ss_network_dropout"] = format_float(o.dropout);
  m["ss_base_model_version"] = "sdxl_base_v1-0";
  m["ss_v2"] = "False";
  m["modelspec.sai_model_spec"] = "1.0.1";
  m["modelspec.architecture"] = "stable-diffusion-xl-v1-base/lora";
  m["modelspec.implementation"] = "https://github.com/Stability-AI/generative-models";
  m["modelspec.implementation_version"] = std::string("lorastudio/") + core::kVersion;
  m["modelspec.title"] = title;
  m["modelspec.date"] = now_iso();
  m["modelspec.resolution"] = std::to_string(resolution_w) + "x" + std::to_string(resolution_h);
  m["modelspec.prediction_type"] = "epsilon";
  return m;
}

namespace {
// Every module's tensors under their file keys (kohya's lora_down/lora_up/alpha, lycoris'
// hada_* / lokr_* / dora_scale): the live tensors, by name.
std::vector<std::pair<std::string, torch::Tensor>> named_tensors(const LoraNetworkImpl& network) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [slot, module] : network.modules())
    for (const auto& [key, t] : module->named_state()) out.emplace_back(slot.name + "." + key, t);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}
}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> lora_state(const LoraNetworkImpl& network) {
  auto out = named_tensors(network);
  for (auto& [name, t] : out) t = t.detach();
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> lora_gradients(const LoraNetworkImpl& network) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, t] : named_tensors(network))
    if (t.grad().defined()) out.emplace_back(name, t.grad());
  return out;
}

void save_lora(const std::string& path, const LoraNetworkImpl& network, c10::ScalarType save_dtype,
               std::map<std::string, std::string> metadata) {
  auto state = lora_state(network);
  for (auto& [name, t] : state) t = t.to(torch::kCPU, save_dtype).contiguous();
  // The data section does not depend on the metadata: hash it once from the tensors' bytes.
  core::Sha256 model_hash;
  for (const auto& [name, t] : state) model_hash.update(t.data_ptr(), t.numel() * t.element_size());
  metadata["sshs_model_hash"] = model_hash.hex_digest();
  // Legacy hash: kohya serialises with the ss_* keys only and hashes 64 KiB at offset 1 MiB.
  std::map<std::string, std::string> ss_only;
  for (const auto& [k, v] : metadata)
    if (k.rfind("ss_", 0) == 0) ss_only[k] = v;
  std::vector<io::TensorInfo> infos;
  for (const auto& [name, t] : state) {
    io::TensorInfo info;
    info.name = name;
    info.dtype = io::dtype_from_torch(save_dtype);
    info.shape = t.sizes().vec();
    infos.push_back(std::move(info));
  }
  io::lay_out(infos);
  std::string header = io::serialize_header(infos, ss_only, path);
  // The file kohya hashes is [8-byte length][header][data]; take its bytes [1 MiB, 1 MiB + 64 KiB).
  core::Sha256 legacy;
  const uint64_t start = 0x100000, end = start + 0x10000;
  uint64_t pos = 0;
  auto feed = [&](const char* bytes, uint64_t n) {
    uint64_t lo = std::max(pos, start), hi = std::min(pos + n, end);
    if (lo < hi) legacy.update(bytes + (lo - pos), hi - lo);
    pos += n;
  };
  const std::string length = io::header_length_bytes(header.size());
  feed(length.data(), length.size());
  feed(header.data(), header.size());
  for (const auto& [name, t] : state) feed(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  metadata["sshs_legacy_hash"] = legacy.hex_digest().substr(0, 8);
  io::save_safetensors(path, state, metadata);
}

std::vector<std::string> unmatched_summary(const std::string& path, const std::vector<std::string>& unmatched,
                                           const models::SdxlModel& model) {
  struct PartInfo {
    const char* prefix;
    const char* what;
    bool loaded;
  };
  const PartInfo parts[] = {{"lora_unet_", "the UNet", !model.unet.is_empty()},
                            {"lora_te1_", "text encoder 1", !model.te1.is_empty()},
                            {"lora_te2_", "text encoder 2", !model.te2.is_empty()}};
  std::map<std::string, std::vector<std::string>> by_part;  // prefix ("" for other names) -> names
  for (const std::string& name : unmatched) {
    std::string key;
    for (const PartInfo& p : parts)
      if (name.rfind(p.prefix, 0) == 0) key = p.prefix;
    by_part[key].push_back(name);
  }
  std::vector<std::string> lines;
  for (const auto& [prefix, names] : by_part) {
    const PartInfo* part = nullptr;
    for (const PartInfo& p : parts)
      if (prefix == p.prefix) part = &p;
    if (part && !part->loaded) {
      lines.push_back(str_cat(path, ": ", names.size(), " ", prefix.substr(0, prefix.size() - 1),
                              " modules not applied (", part->what, " is not loaded)"));
      continue;
    }
    std::string first;
    for (size_t i = 0; i < names.size() && i < 3; ++i) first += (i ? ", " : "") + names[i];
    lines.push_back(str_cat(path, ": ", names.size(), " ", part ? prefix.substr(0, prefix.size() - 1) + " " : "",
                            "module", names.size() == 1 ? " matches no layer of the model and is" : "s match no layer of the model and are",
                            " ignored (",
                            first, names.size() > 3 ? ", ..." : "", ")"));
  }
  return lines;
}

LoadedLora load_lora(const std::string& path, const models::SdxlModel& model) {
  io::SafetensorsReader reader(path);
  auto kind = models::detect_checkpoint_kind(reader.tensors());
  LS_CHECK(kind == models::CheckpointKind::kLora, path, ": this is ", models::describe(kind),
           ", not a LoRA; pass LoRA files with --lora");
  // kohya and lycoris name a module's tensors "<module name>.<key>"; the module name has no dot.
  std::map<std::string, std::map<std::string, std::vector<int64_t>>> files_modules;
  for (const auto& info : reader.tensors()) {
    const auto dot = info.name.find('.');
    if (dot == std::string::npos || !is_adapter_key(info.name.substr(dot + 1))) continue;
    files_modules[info.name.substr(0, dot)][info.name.substr(dot + 1)] = info.shape;
  }
  auto slots = all_lora_slots(model);
  LoadedLora out;
  out.metadata = reader.metadata();
  std::vector<std::pair<LoraSlot, LoraModuleOptions>> matched;
  for (const auto& [name, shapes] : files_modules) {
    auto it = slots.find(name);
    if (it == slots.end()) {
      out.unmatched.push_back(name);
      continue;
    }
    const LoraSlot& slot = it->second;
    LoraModuleOptions o = adapter_options_from_shapes(shapes, slot.target.weight().sizes(), path + ": " + name);
    o.alpha = shapes.count(kAlphaKey) ? reader.load(name + "." + kAlphaKey).to(torch::kDouble).item<double>() : 0.0;
    matched.emplace_back(slot, o);
  }
  LS_CHECK(!matched.empty(), path, ": none of its ", files_modules.size(),
           " LoRA modules matches a layer of this SDXL model (first: ",
           files_modules.empty() ? std::string("none") : files_modules.begin()->first,
           "); it was made for another architecture");
  out.network = LoraNetwork(matched);
  torch::NoGradGuard no_grad;
  for (const auto& [slot, module] : out.network->modules()) {
    for (const auto& [key, t] : module->named_state()) {
      if (key == kAlphaKey) continue;  // set from the file through the options (absent: = rank)
      torch::Tensor live = t;
      live.copy_(reader.load(slot.name + "." + key).reshape(t.sizes()));
    }
  }
  return out;
}

}  // namespace ls::lora
