// `lorastudio debug make-model` / `make-inputs` / `make-lora`: a random model of a given architecture
// in the SDXL single-file layout, seeded inputs for `debug forward` and `debug train-step`, and a
// LoRA for a model, for tests, benchmarks, parity checks and the quickstart (no real weights can be
// downloaded here).
#include <filesystem>
#include <torch/torch.h>

#include "cli/commands.h"
#include "core/error.h"
#include "core/runtime.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "lora/network.h"
#include "models/checkpoint.h"
#include "text/clip_tokenizer.h"
#include "text/prompt_windows.h"

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
struct MakeInputsOptions {
  std::string component, output, config, vocab, prompt;
  int64_t seed = 0, batch = 1, height = 128, width = 128;  // image pixels
};

// Token windows of a prompt (with --vocab) or random ids, start ... end, padded as each encoder pads.
torch::Tensor make_tokens(const MakeInputsOptions& o, const models::ClipTextConfig& te, int64_t pad,
                          torch::Generator& gen) {
  auto ids = torch::full({o.batch, 77}, pad, torch::kLong);
  if (!o.vocab.empty()) {
    auto tokenizer = text::ClipTokenizer::from_file(o.vocab);
    auto window = text::token_windows(tokenizer.encode(o.prompt), 1, pad)[0];
    for (int64_t b = 0; b < o.batch; ++b)
      for (int64_t i = 0; i < 77; ++i) ids[b][i] = window[i];
    return ids;
  }
  int64_t body = 5;  // a short prompt: start, 5 tokens, end, padding
  ids.select(1, 0).fill_(text::ClipTokenizer::kStart);
  ids.slice(1, 1, 1 + body).copy_(torch::randint(0, std::min<int64_t>(te.vocab_size, 49406), {o.batch, body}, gen));
  ids.select(1, 1 + body).fill_(text::ClipTokenizer::kEnd);
  return ids;
}

void run_make_inputs(const MakeInputsOptions& o) {
  auto config = o.config.empty() ? models::SdxlConfig{} : models::load_config_file(o.config);
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(o.seed));
  int64_t down = int64_t(1) << (config.vae.ch_mult.size() - 1);
  LS_CHECK(o.height % down == 0 && o.width % down == 0, "--height/--width must be multiples of ", down);
  int64_t h = o.height / down, w = o.width / down;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (o.component == "unet") {
    out = {{"x", torch::randn({o.batch, config.unet.in_channels, h, w}, gen, f32)},
           {"t", torch::randint(0, 1000, {o.batch}, gen, torch::kLong)},
           {"context", torch::randn({o.batch, 77, config.unet.context_dim}, gen, f32)},
           {"y", torch::randn({o.batch, config.unet.adm_in_channels}, gen, f32)}};
  } else if (o.component == "text") {
    out = {{"tokens_l", make_tokens(o, config.te1, text::ClipTokenizer::kEnd, gen)},
           {"tokens_g", make_tokens(o, config.te2, 0, gen)}};
  } else if (o.component == "train-step") {
    // Scaled latents are about unit-variance, as the trainer's cached ones.
    out = {{"latents", torch::randn({o.batch, config.unet.in_channels, h, w}, gen, f32)},
           {"context", torch::randn({o.batch, 77, config.unet.context_dim}, gen, f32)},
           {"y", torch::randn({o.batch, config.unet.adm_in_channels}, gen, f32)},
           {"noise", torch::randn({o.batch, config.unet.in_channels, h, w}, gen, f32)},
           {"timesteps", torch::randint(0, 1000, {o.batch}, gen, torch::kLong)}};
  } else if (o.component == "vae-encode") {
    out = {{"image", torch::rand({o.batch, 3, o.height, o.width}, gen, f32) * 2 - 1}};
  } else if (o.component == "vae-decode") {
    out = {{"latent", torch::randn({o.batch, config.vae.embed_dim, h, w}, gen, f32)}};
  } else {
    LS_FAIL("--component '", o.component, "' is unknown; use unet, text, vae-encode, vae-decode or train-step");
  }
  io::save_safetensors(o.output, out, {{"component", o.component}});
}

struct MakeLoraOptions {
  std::string model, config, output;
  int64_t seed = 0;
  lora::LoraNetworkOptions network;
  double up_std = 0;  // 0: kohya's zero lora_up
};

// A LoRA for the parts the checkpoint has, kohya-initialised; with --up-std the up weights are drawn
// too, so every gradient of a parity check is non-zero (kohya's init makes lora_down's exactly 0).
// The parts a checkpoint holds, from its key prefixes (a `make-model --unet-only` file has no TEs).
models::Components parts_in(const std::string& path) {
  if (std::filesystem::is_directory(path)) return {true, true, false};  // a diffusers folder has every part
  const io::SafetensorsReader reader(path);
  models::Components parts;
  for (const auto& t : reader.tensors()) {
    parts.unet |= t.name.rfind(models::kUnetPrefix, 0) == 0;
    parts.text |= t.name.rfind(models::kTe1Prefix, 0) == 0;
  }
  return parts;
}

void run_make_lora(const MakeLoraOptions& o) {
  const models::Components parts = parts_in(o.model);
  models::SdxlModel model = models::load_sdxl_checkpoint(o.model, o.config, parts, torch::kCPU, torch::kFloat);
  lora::LoraNetworkOptions options = o.network;
  options.unet = parts.unet;
  options.text_encoders = parts.text;
  LS_CHECK(options.unet || options.text_encoders, o.model, ": has neither a UNet nor text encoders to put a LoRA on");
  torch::manual_seed(static_cast<uint64_t>(o.seed));
  lora::LoraNetwork network(model, options);
  if (o.up_std > 0) {
    torch::NoGradGuard no_grad;
    for (auto& item : network->named_parameters())
      if (item.key().find("lora_up") != std::string::npos) item.value().normal_(0, o.up_std);
  }
  lora::save_lora(o.output, *network, torch::kFloat, {{"lorastudio.seed", std::to_string(o.seed)}});
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

  auto in = std::make_shared<MakeInputsOptions>();
  auto* inputs = debug.add_subcommand("make-inputs", "Write seeded inputs for `debug forward --component C` (or `debug train-step`)");
  inputs->add_option("--component", in->component, "unet | text | vae-encode | vae-decode | train-step")->required();
  inputs->add_option("--output", in->output, "Output .safetensors")->required();
  inputs->add_option("--config", in->config, "Architecture JSON (absent: full-size SDXL)")->check(CLI::ExistingFile);
  inputs->add_option("--seed", in->seed, "Seed")->capture_default_str();
  inputs->add_option("--batch", in->batch, "Batch size")->capture_default_str();
  inputs->add_option("--height", in->height, "Image height in pixels (latent = height / 8)")->capture_default_str();
  inputs->add_option("--width", in->width, "Image width in pixels")->capture_default_str();
  inputs->add_option("--vocab", in->vocab, "CLIP vocabulary: tokenize --prompt instead of random ids");
  inputs->add_option("--prompt", in->prompt, "Prompt for the text component (with --vocab)");
  inputs->callback([in] { run_make_inputs(*in); });

  auto lo = std::make_shared<MakeLoraOptions>();
  auto* make_lora = debug.add_subcommand("make-lora", "Write a kohya-initialised LoRA for a model (e.g. --lora-init of train-step)");
  make_lora->add_option("--model", lo->model, "SDXL checkpoint or diffusers folder: the LoRA covers the parts it has")
      ->required()->check(CLI::ExistingPath);
  make_lora->add_option("--config", lo->config, "Architecture JSON for non-SDXL-sized test models")->check(CLI::ExistingFile);
  make_lora->add_option("--output", lo->output, "Output .safetensors (float32)")->required();
  make_lora->add_option("--seed", lo->seed, "Seed")->capture_default_str();
  make_lora->add_option("--network_dim", lo->network.rank, "Rank")->capture_default_str();
  make_lora->add_option("--network_alpha", lo->network.alpha, "Alpha")->capture_default_str();
  make_lora->add_option("--conv_dim", lo->network.conv_rank, "Rank of the 3x3 convs (0: none)")->capture_default_str();
  make_lora->add_option("--conv_alpha", lo->network.conv_alpha, "Alpha of the 3x3 convs")->capture_default_str();
  make_lora->add_option("--up-std", lo->up_std, "Draw lora_up from N(0, S) instead of kohya's zeros")->capture_default_str();
  make_lora->callback([lo] { run_make_lora(*lo); });
}

}  // namespace ls::cli
