// `lorastudio plan`: the LoRA parameters per part and the file size at each save precision, from
// the base model's architecture alone, before any training.
#include <cstdio>

#include "cli/commands.h"
#include "cli/network_options.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "lora/plan.h"
#include "models/checkpoint.h"
#include "models/model_source.h"
#include "models/checkpoint_kind.h"
#include "nn/layers.h"

namespace ls::cli {

namespace {

struct PlanOptions {
  std::string model, config;
  lora::LoraNetworkOptions network;
};

void run_plan(const PlanOptions& o) {
  models::SdxlConfig config;
  if (!o.model.empty()) {
    config = models::model_config({o.model, o.config, ""});
  } else if (!o.config.empty()) {
    config = models::load_config_file(o.config);
  }
  models::SdxlModel model;
  {
    nn::SkipInitGuard skip;  // only shapes are needed: nothing is written to these weights
    model = models::SdxlModel::create(config, {true, true, false});
  }
  auto plan = lora::plan_network(model, o.network);
  auto metadata = lora::network_metadata(o.network, "plan", 1024, 1024);
  metadata["sshs_model_hash"] = std::string(64, '0');
  metadata["sshs_legacy_hash"] = std::string(8, '0');
  std::printf("LoRA plan: rank %lld alpha %g", static_cast<long long>(o.network.rank), o.network.alpha);
  if (o.network.conv_rank > 0) std::printf(", conv rank %lld alpha %g", static_cast<long long>(o.network.conv_rank), o.network.conv_alpha);
  std::printf("\n");
  if (const auto& blocks = o.network.blocks.ranks) {
    // kohya's block_dims mode: the U-Net's ranks come from its 23 blocks (lora/block_weights.h).
    auto list = [](const auto& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ",") + str_cat(x);
      return s;
    };
    std::printf("  U-Net ranks per block (0-22): %s\n", list(blocks->dims).c_str());
    if (!blocks->conv_dims.empty()) std::printf("  U-Net 3x3 conv ranks per block: %s\n", list(blocks->conv_dims).c_str());
  }
  for (const auto& [part, count] : plan.parameters) {
    std::printf("  %-9s %4lld modules %14lld parameters\n", lora::part_prefix(part),
                static_cast<long long>(plan.modules.at(part)), static_cast<long long>(count));
  }
  std::printf("  %-9s %4s         %14lld parameters\n", "total", "", static_cast<long long>(plan.total_parameters()));
  for (auto [name, dtype] : {std::pair{"fp16", io::Dtype::kF16}, {"bf16", io::Dtype::kBF16}, {"fp32", io::Dtype::kF32}}) {
    uint64_t bytes = plan.file_size(dtype, metadata);
    std::printf("  file size %s: %llu bytes (%.1f MB, %.2f GiB)\n", name, static_cast<unsigned long long>(bytes),
                bytes / 1e6, bytes / double(1ull << 30));
  }
}

}  // namespace

void register_plan(CLI::App& app) {
  auto opts = std::make_shared<PlanOptions>();
  auto* cmd = app.add_subcommand("plan", "LoRA parameters per part and file size per save precision, before training");
  cmd->add_option("--model", opts->model, "Base SDXL checkpoint or diffusers folder (absent: full-size SDXL)")->check(CLI::ExistingPath);
  cmd->add_option("--config", opts->config, "Architecture JSON for non-SDXL-sized test models")->check(CLI::ExistingFile);
  add_network_options(*cmd, opts->network);
  cmd->callback([opts] { run_plan(*opts); });
}

}  // namespace ls::cli
