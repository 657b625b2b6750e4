// `lorastudio merge`: adds LoRAs (each at its multiplier) into the base weights and writes a merged
// SDXL single-file checkpoint.
#include <cstdio>

#include <torch/torch.h>

#include "cli/commands.h"
#include "core/runtime.h"
#include "lora/kohya_format.h"
#include "models/checkpoint.h"

namespace ls::cli {

namespace {

struct MergeOptions {
  std::string model, config, output;
  std::vector<std::string> loras;
  std::string save_precision = "fp16";
};

void run_merge(const MergeOptions& o) {
  auto model = models::load_sdxl_checkpoint(o.model, o.config, models::Components::all(), torch::kCPU, torch::kFloat);
  for (const auto& arg : o.loras) {
    auto [path, multiplier] = lora::parse_lora_arg(arg);
    auto loaded = lora::load_lora(path, model);
    for (const std::string& line : lora::unmatched_summary(path, loaded.unmatched, model))
      std::fprintf(stderr, "warning: %s\n", line.c_str());
    loaded.network->set_multiplier(multiplier);
    loaded.network->merge_into_base();
    std::printf("merged %s x %g (%zu modules)\n", path.c_str(), multiplier, loaded.network->modules().size());
  }
  models::save_sdxl_checkpoint(o.output, model, core::parse_dtype(o.save_precision));
  std::printf("wrote %s\n", o.output.c_str());
}

}  // namespace

void register_merge(CLI::App& app) {
  auto opts = std::make_shared<MergeOptions>();
  auto* cmd = app.add_subcommand("merge", "Merge LoRAs into an SDXL checkpoint and save it");
  cmd->add_option("--model", opts->model, "Base SDXL checkpoint or diffusers folder")->required()->check(CLI::ExistingPath);
  cmd->add_option("--lora", opts->loras, "LoRA file, optionally FILE:MULTIPLIER (repeatable)")->required();
  cmd->add_option("--output", opts->output, "Merged checkpoint (.safetensors)")->required();
  cmd->add_option("--config", opts->config, "Architecture JSON for non-SDXL-sized test models")->check(CLI::ExistingFile);
  cmd->add_option("--save_precision", opts->save_precision, "fp16, bf16 or fp32")->capture_default_str();
  cmd->callback([opts] { run_merge(*opts); });
}

}  // namespace ls::cli
