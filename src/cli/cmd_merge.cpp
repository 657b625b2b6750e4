// `lorastudio merge`: adds LoRAs (each at its multiplier) into the base weights and writes a merged
// SDXL single-file checkpoint or diffusers folder (without LoRAs: converts between the two).
#include <cstdio>
#include <filesystem>

#include <torch/torch.h>

#include "cli/commands.h"
#include "core/error.h"
#include "core/runtime.h"
#include "lora/kohya_format.h"
#include "models/checkpoint.h"
#include "models/diffusers_folder.h"
#include "models/model_source.h"

namespace ls::cli {

namespace {

struct MergeOptions {
  std::string model, config, output, tokenizer;
  std::string format = "safetensors";
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
  LS_CHECK(o.format == "safetensors" || o.format == "diffusers", "merge: --format '", o.format,
           "' is unknown; use safetensors or diffusers");
  if (o.format == "diffusers") {
    // The folder's tokenizer/: the given or found vocabulary when it is a vocab.json + merges.txt folder.
    const std::string vocab = models::find_tokenizer(o.tokenizer, o.model);
    const bool pair = !vocab.empty() && std::filesystem::is_regular_file(std::filesystem::path(vocab) / "vocab.json");
    if (!vocab.empty() && !pair)
      std::fprintf(stderr, "note: %s is not a vocab.json + merges.txt folder; the diffusers folder gets no tokenizer/\n",
                   vocab.c_str());
    models::save_diffusers_folder(o.output, model, core::parse_dtype(o.save_precision), pair ? vocab : "");
  } else {
    models::save_sdxl_checkpoint(o.output, model, core::parse_dtype(o.save_precision));
  }
  std::printf("wrote %s\n", o.output.c_str());
}

}  // namespace

void register_merge(CLI::App& app) {
  auto opts = std::make_shared<MergeOptions>();
  auto* cmd = app.add_subcommand("merge", "Merge LoRAs into an SDXL checkpoint and save it (no --lora: convert)");
  cmd->add_option("--model", opts->model, "Base SDXL checkpoint or diffusers folder")->required()->check(CLI::ExistingPath);
  cmd->add_option("--lora", opts->loras, "LoRA file, optionally FILE:MULTIPLIER (repeatable; none: a plain conversion)");
  cmd->add_option("--output", opts->output, "Merged checkpoint (.safetensors), or a new folder with --format diffusers")->required();
  cmd->add_option("--format", opts->format, "safetensors (SDXL single file) or diffusers (a save_pretrained folder)")
      ->capture_default_str();
  cmd->add_option("--tokenizer", opts->tokenizer, "vocab.json + merges.txt folder copied into a diffusers output (default: found beside the model)");
  cmd->add_option("--config", opts->config, "Architecture JSON for non-SDXL-sized test models")->check(CLI::ExistingFile);
  cmd->add_option("--save_precision", opts->save_precision, "fp16, bf16 or fp32")->capture_default_str();
  cmd->callback([opts] { run_merge(*opts); });
}

}  // namespace ls::cli
