// `lorastudio lora info FILE`: what a LoRA file holds (modules per part, ranks, alphas, dtype,
// metadata, size), for ours and kohya's alike.
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

void run_info(const InfoOptions& o) {
  io::SafetensorsReader reader(o.file);
  auto kind = models::detect_checkpoint_kind(reader.tensors());
  LS_CHECK(kind == models::CheckpointKind::kLora, o.file, ": this is ", models::describe(kind),
           ", not a LoRA; `lora info` reads LoRA files");
  const std::string down = ".lora_down.weight";
  std::map<std::string, int64_t> modules, conv_modules;
  std::map<std::string, std::set<int64_t>> ranks;
  std::set<double> alphas;
  std::set<std::string> dtypes;
  int64_t parameters = 0;
  for (const auto& info : reader.tensors()) {
    dtypes.insert(io::dtype_name(info.dtype));
    parameters += info.numel();
    const auto& n = info.name;
    if (n.size() > down.size() && n.compare(n.size() - down.size(), down.size(), down) == 0) {
      auto part = part_of(n);
      modules[part] += 1;
      if (info.shape.size() == 4 && info.shape[2] > 1) conv_modules[part] += 1;
      if (!info.shape.empty()) ranks[part].insert(info.shape[0]);
    } else if (n.size() > 6 && n.compare(n.size() - 6, 6, ".alpha") == 0) {
      alphas.insert(reader.load(n).to(torch::kDouble).item<double>());
    }
  }
  nlohmann::json j;
  j["file"] = o.file;
  j["size_bytes"] = std::filesystem::file_size(o.file);
  j["tensors"] = reader.tensors().size();
  j["parameters"] = parameters;
  j["dtypes"] = dtypes;
  j["alphas"] = alphas;
  for (const auto& [part, count] : modules) {
    j["parts"][part] = {{"modules", count}, {"conv_modules", conv_modules[part]}, {"ranks", ranks[part]}};
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
    std::printf("  %-5s %4lld modules (%lld conv 3x3), rank %s\n", part.c_str(), static_cast<long long>(count),
                static_cast<long long>(conv_modules[part]), nlohmann::json(ranks[part]).dump().c_str());
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
  info->add_option("file", opts->file, "LoRA .safetensors (kohya format)")->required()->check(CLI::ExistingFile);
  info->add_flag("--json", opts->json, "Print JSON instead of text");
  info->callback([opts] { run_info(*opts); });
}

}  // namespace ls::cli
