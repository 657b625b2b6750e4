// `lorastudio debug make-model`: a random model of a given architecture in the SDXL single-file
// layout, for tests, benchmarks and the quickstart (no real weights can be downloaded here).
#include <torch/torch.h>

#include "cli/commands.h"
#include "core/runtime.h"
#include "models/checkpoint.h"

namespace ls::cli {

namespace {
struct MakeModelOptions {
  std::string config;  // empty: full-size SDXL
  int64_t seed = 0;
  std::string output;
  std::string dtype = "fp32";  // storage precision of floating tensors
  bool unet_only = false;
};

void run_make_model(const MakeModelOptions& o) {
  auto config = o.config.empty() ? models::SdxlConfig{} : models::load_config_file(o.config);
  auto save_dtype = core::parse_dtype(o.dtype);
  torch::manual_seed(static_cast<uint64_t>(o.seed));
  models::Components parts = o.unet_only ? models::Components{true, false, false} : models::Components::all();
  auto model = models::SdxlModel::create(config, parts);
  models::save_sdxl_checkpoint(o.output, model, save_dtype,
                               {{"lorastudio.seed", std::to_string(o.seed)}});
}
}  // namespace

void register_debug_make_model(CLI::App& debug) {
  auto opts = std::make_shared<MakeModelOptions>();
  auto* cmd = debug.add_subcommand("make-model", "Write a randomly initialised model in the SDXL single-file layout");
  cmd->add_option("--config", opts->config, "Architecture JSON (absent: full-size SDXL)")->check(CLI::ExistingFile);
  cmd->add_option("--seed", opts->seed, "Seed of the random weights");
  cmd->add_option("--output", opts->output, "Output .safetensors")->required();
  cmd->add_option("--dtype", opts->dtype, "Storage precision: fp32, fp16 or bf16")->capture_default_str();
  cmd->add_flag("--unet-only", opts->unet_only, "Write only the UNet (model.diffusion_model.*)");
  cmd->callback([opts] { run_make_model(*opts); });
}

}  // namespace ls::cli
