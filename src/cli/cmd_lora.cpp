// `lorastudio lora info FILE`: what a LoRA file holds (modules per part and algorithm — kohya
// LoRA/LoCon, LyCORIS LoHa / LoKr, DoRA —, ranks, alphas, dtype, metadata, size), for ours,
// kohya's and lycoris' files alike.
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cli/commands.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/checkpoint_kind.h"

namespace ls::cli {

namespace {

struct InfoOptions {
  std::string file;
  bool json = false;
};

std::string part_of(const std::string& name) {
  for (const char* p : {"lora_unet_", "lora_te1_", "lora_te2_", "lora_te_"}) {
    if (name.rfind(p, 0) == 0) return std::string(p).substr(5, std::string(p).size() - 6);
  }
  return "other";
}

// What one module's keys say: its algorithm, rank and whether it is a 3x3 conv (where the shapes
// show it: a LoHa's or LoKr's flattened conv factors do not).
struct InfoModule {
  std::string algo;
  int64_t rank = 0;
  bool conv = false, dora = false;
};

InfoModule info_module(const std::map<std::string, std::vector<int64_t>>& keys) {
  InfoModule m;
  auto dim = [&](const char* k, size_t i) -> int64_t {
    auto it = keys.find(k);
    return it != keys.end() && i < it->second.size() ? it->second[i] : 0;
  };
  auto spatial = [&](const char* k) {
    auto it = keys.find(k);
    return it != keys.end() && it->second.size() == 4 && (it->second[2] > 1 || it->second[3] > 1);
  };
  if (keys.count("hada_w1_a")) {
    m.algo = "loha", m.rank = dim("hada_w1_b", 0), m.conv = keys.count("hada_t1") > 0;
  } else if (keys.count("lokr_w1") || keys.count("lokr_w1_a")) {
    m.algo = "lokr";
    m.rank = keys.count("lokr_w1_b") ? dim("lokr_w1_b", 0) : keys.count("lokr_w2_b") ? dim("lokr_w2_b", 0) : 0;
    m.conv = keys.count("lokr_t2") > 0 || spatial("lokr_w2");
  } else {
    m.algo = "lora", m.rank = dim("lora_down.weight", 0), m.conv = spatial("lora_down.weight");
  }
  m.dora = keys.count("dora_scale") > 0;
  return m;
}

void run_info(const InfoOptions& o) {
  io::SafetensorsReader reader(o.file);
  auto kind = models::detect_checkpoint_kind(reader.tensors());
  LS_CHECK(kind == models::CheckpointKind::kLora, o.file, ": this is ", models::describe(kind),
           ", not a LoRA; `lora info` reads LoRA files");
  std::map<std::string, std::map<std::string, std::vector<int64_t>>> by_module;  // kohya / lycoris keys
  std::set<double> alphas;
  std::set<std::string> dtypes;
  int64_t parameters = 0;
  for (const auto& info : reader.tensors()) {
    dtypes.insert(io::dtype_name(info.dtype));
    parameters += info.numel();
    const auto dot = info.name.find('.');
    if (dot == std::string::npos) continue;
    const std::string key = info.name.substr(dot + 1);
    by_module[info.name.substr(0, dot)][key] = info.shape;
    if (key == "alpha") alphas.insert(reader.load(info.name).to(torch::kDouble).item<double>());
  }
  std::map<std::string, int64_t> modules, conv_modules, dora_modules;
  std::map<std::string, std::set<int64_t>> ranks;
  std::map<std::string, std::map<std::string, int64_t>> algos;
  for (const auto& [name, keys] : by_module) {
    if (!keys.count("lora_down.weight") && !keys.count("hada_w1_a") && !keys.count("lokr_w1") &&
        !keys.count("lokr_w1_a"))
      continue;
    const InfoModule m = info_module(keys);
    const std::string part = part_of(name);
    modules[part] += 1;
    conv_modules[part] += m.conv;
    dora_modules[part] += m.dora;
    if (m.rank > 0) ranks[part].insert(m.rank);
    algos[part][m.algo] += 1;
  }
  nlohmann::json j;
  j["file"] = o.file;
  j["size_bytes"] = std::filesystem::file_size(o.file);
  j["tensors"] = reader.tensors().size();
  j["parameters"] = parameters;
  j["dtypes"] = dtypes;
  j["alphas"] = alphas;
  for (const auto& [part, count] : modules) {
    j["parts"][part] = {{"modules", count},           {"conv_modules", conv_modules[part]},
                        {"ranks", ranks[part]},       {"algorithms", algos[part]},
                        {"dora_modules", dora_modules[part]}};
  }
  j["metadata"] = reader.metadata();
  if (o.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s: %.1f MB, %zu tensors, %lld parameters, dtype %s\n", o.file.c_str(),
              j["size_bytes"].get<double>() / 1e6, reader.tensors().size(), static_cast<long long>(parameters),
              j["dtypes"].dump().c_str());
  for (const auto& [part, count] : modules) {
    std::string kinds;
    for (const auto& [algo, n] : algos[part]) kinds += (kinds.empty() ? "" : ", ") + std::to_string(n) + " " + algo;
    if (dora_modules[part] > 0) kinds += ", " + std::to_string(dora_modules[part]) + " with DoRA";
    std::printf("  %-5s %4lld modules (%s; %lld conv 3x3), rank %s\n", part.c_str(), static_cast<long long>(count),
                kinds.c_str(), static_cast<long long>(conv_modules[part]), nlohmann::json(ranks[part]).dump().c_str());
  }
  std::printf("  alpha %s\n", nlohmann::json(alphas).dump().c_str());
  for (const auto& [k, v] : reader.metadata()) {
    std::string shown = v.size() > 120 ? v.substr(0, 117) + "..." : v;
    std::printf("  %s = %s\n", k.c_str(), shown.c_str());
  }
}

}  // namespace

void register_lora(CLI::App& app) {
  auto* lora = app.add_subcommand("lora", "Inspect LoRA files");
  lora->require_subcommand(1);
  auto opts = std::make_shared<InfoOptions>();
  auto* info = lora->add_subcommand("info", "Ranks, alphas, modules per part, dtype, metadata and size of a LoRA file");
  info->add_option("file", opts->file, "LoRA .safetensors (kohya or LyCORIS format)")->required()->check(CLI::ExistingFile);
  info->add_flag("--json", opts->json, "Print JSON instead of text");
  info->callback([opts] { run_info(*opts); });
}

}  // namespace ls::cli
