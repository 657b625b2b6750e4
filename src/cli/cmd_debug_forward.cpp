// `lorastudio debug forward`: runs one SDXL component on tensors from a safetensors file and writes
// its outputs (float32). A stable interface: the team's parity suite calls it. The model is a
// single-file checkpoint or a diffusers folder; --vae replaces its VAE.
#include <cstdio>

#include <torch/torch.h>

#include "cli/commands.h"
#include "cli/debug_inputs.h"
#include "core/error.h"
#include "core/runtime.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "models/model_source.h"
#include "models/sdxl_conditioner.h"

namespace ls::cli {

namespace {

struct ForwardOptions {
  std::string model, component, inputs, output, config, vae;
  std::string dtype = "fp32";
  std::string device = "cpu";
  std::vector<std::string> loras;  // FILE or FILE:MULT
};

// Attaches each --lora to the loaded parts; the returned networks must outlive the forward.
std::vector<lora::LoraNetwork> apply_loras(const std::vector<std::string>& args, const models::SdxlModel& model) {
  std::vector<lora::LoraNetwork> networks;
  for (const auto& arg : args) {
    auto [path, multiplier] = lora::parse_lora_arg(arg);
    auto loaded = lora::load_lora(path, model);
    for (const std::string& line : lora::unmatched_summary(path, loaded.unmatched, model))
      std::fprintf(stderr, "warning: %s\n", line.c_str());
    loaded.network->set_multiplier(multiplier);
    loaded.network->eval();
    loaded.network->apply();
    networks.push_back(loaded.network);
  }
  return networks;
}

// Inputs of `debug forward` (the message names the command).
class Inputs {
 public:
  Inputs(const std::string& path, c10::Device device, c10::ScalarType dtype) : in_(path, device, dtype) {}
  torch::Tensor get(const std::string& name) const { return in_.get(name, "debug forward"); }

 private:
  DebugInputs in_;
};

using Outputs = std::vector<std::pair<std::string, torch::Tensor>>;

Outputs run_component(const ForwardOptions& o, const Inputs& in, c10::Device device, c10::ScalarType dtype) {
  models::Components parts;
  if (o.component == "unet") parts.unet = true;
  else if (o.component == "text") parts.text = true;
  else if (o.component == "vae-encode" || o.component == "vae-decode") parts.vae = true;
  else LS_FAIL("--component '", o.component, "' is unknown; use unet, text, vae-encode or vae-decode");

  auto model = models::load_sdxl_model({o.model, o.config, o.vae}, parts, device, dtype);
  LS_CHECK(o.loras.empty() || !parts.vae, "--lora applies to the unet and text components only");
  auto networks = apply_loras(o.loras, model);
  torch::NoGradGuard no_grad;
  if (o.component == "unet") {
    auto x = in.get("x"), t = in.get("t"), context = in.get("context"), y = in.get("y");  // in this order
    return {{"out", model.unet->forward(x, t, context, y)}};
  }
  if (o.component == "text") {
    models::SdxlConditioner conditioner(model.te1, model.te2);
    auto tokens_l = in.get("tokens_l"), tokens_g = in.get("tokens_g");
    auto e = conditioner.encode(tokens_l, tokens_g);
    return {{"hidden_l", e.hidden_l}, {"hidden_g", e.hidden_g}, {"pooled_g", e.pooled_g}, {"context", e.context}};
  }
  if (o.component == "vae-encode") {
    auto m = model.vae->encode(in.get("image"));
    return {{"mean", m.mean}, {"logvar", m.logvar}};
  }
  return {{"image", model.vae->decode(in.get("latent"))}};
}

void run_forward(const ForwardOptions& o) {
  std::string blas = core::loaded_blas();
  if (core::blas_is_reference(blas)) {
    std::fprintf(stderr, "warning: libtorch uses the reference BLAS (%s), ~25x slower; run scripts/setup\n", blas.c_str());
  }
  auto device = core::parse_device(o.device);
  auto dtype = core::parse_dtype(o.dtype);
  Inputs inputs(o.inputs, device, dtype);
  auto outputs = run_component(o, inputs, device, dtype);
  for (auto& [name, t] : outputs) t = t.to(torch::kCPU, torch::kFloat);
  io::save_safetensors(o.output, outputs, {{"component", o.component}, {"dtype", o.dtype}});
  for (const auto& [name, t] : outputs) {
    std::printf("%s %s mean %.6g std %.6g\n", name.c_str(), shape_text(t).c_str(), t.mean().item<double>(),
                t.numel() > 1 ? t.std().item<double>() : 0.0);
  }
}

}  // namespace

void register_debug_forward(CLI::App& debug) {
  auto opts = std::make_shared<ForwardOptions>();
  auto* cmd = debug.add_subcommand(
      "forward",
      "Run one component on tensors from a safetensors file.\n"
      "  unet:       x [B,4,H,W], t [B] int64, context [B,77,2048], y [B,2816] -> out [B,4,H,W]\n"
      "  text:       tokens_l, tokens_g [B,77] int64 -> hidden_l [B,77,768], hidden_g [B,77,1280],\n"
      "              pooled_g [B,1280], context [B,77,2048]\n"
      "  vae-encode: image [B,3,H,W] in [-1,1] -> mean, logvar [B,4,H/8,W/8]\n"
      "  vae-decode: latent [B,4,h,w] (unscaled) -> image [B,3,8h,8w]");
  cmd->add_option("--model", opts->model, "SDXL checkpoint (.safetensors) or diffusers folder")->required()->check(CLI::ExistingPath);
  cmd->add_option("--vae", opts->vae, "Separate VAE (.safetensors, ldm or diffusers names, or a diffusers VAE folder) for vae-encode/vae-decode")
      ->check(CLI::ExistingPath);
  cmd->add_option("--component", opts->component, "unet | text | vae-encode | vae-decode")->required();
  cmd->add_option("--inputs", opts->inputs, "Input tensors (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--output", opts->output, "Output tensors (.safetensors, float32)")->required();
  cmd->add_option("--config", opts->config, "Architecture JSON for non-SDXL-sized test models")->check(CLI::ExistingFile);
  cmd->add_option("--dtype", opts->dtype, "Compute precision: fp32, fp16 or bf16")->capture_default_str();
  cmd->add_option("--device", opts->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--lora", opts->loras, "LoRA to apply, FILE or FILE:MULTIPLIER (repeatable; unet, text)");
  cmd->callback([opts] { run_forward(*opts); });
}

}  // namespace ls::cli
