// `lorastudio debug florence2`: Florence-2's intermediate tensors for given inputs, or with
// --generate its generated ids and texts. A stable interface: tests and parity scripts call it.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "caption/florence2_caption.h"
#include "cli/commands.h"
#include "cli/debug_inputs.h"
#include "core/error.h"
#include "core/runtime.h"
#include "io/safetensors.h"

namespace ls::cli {
namespace {

struct Florence2DebugOptions {
  std::string model_dir, inputs, output;
  std::string dtype = "fp32";
  std::string device = "cpu";
  bool generate = false;
  int64_t num_beams = 0;  // 0: the config's
  int64_t max_new_tokens = 1024;
};

void run_florence2_debug(const Florence2DebugOptions& o) {
  core::init_threads();
  auto device = core::parse_device(o.device);
  auto dtype = core::parse_dtype(o.dtype);
  auto model = caption::load_florence2(o.model_dir, device, dtype);
  DebugInputs inputs(o.inputs, device, dtype);
  auto pixels = inputs.get("pixel_values", "debug florence2");
  auto input_ids = inputs.get("input_ids", "debug florence2");
  LS_CHECK(pixels.dim() == 4 && pixels.size(1) == 3, o.inputs, ": pixel_values is ", shape_text(pixels),
           ", the model takes [B,3,H,W]");
  LS_CHECK(input_ids.dim() == 2 && input_ids.size(0) == pixels.size(0), o.inputs, ": input_ids is ",
           shape_text(input_ids), ", expected [", pixels.size(0), ",L] (the prompt's ids, without <image> placeholders)");
  torch::InferenceMode inference;
  auto image_features = model.net->image_features(pixels);
  auto states = model.net->encode(pixels, input_ids.to(torch::kInt64));
  std::map<std::string, std::string> metadata{{"dtype", o.dtype}};
  if (o.generate) {
    auto options = caption::Florence2GenerateOptions::from(model.config.text);
    if (o.num_beams > 0) options.num_beams = o.num_beams;
    options.max_new_tokens = o.max_new_tokens;
    auto ids = caption::florence2_generate(*model.net->language_model, states, options);
    metadata["texts"] = nlohmann::json(caption::florence2_decode(model.tokenizer, ids)).dump();
    metadata["num_beams"] = std::to_string(options.num_beams);
    io::save_safetensors(o.output, {{"sequences", ids}}, metadata);
    return;
  }
  auto decoder_ids = inputs.get("decoder_input_ids", "debug florence2");
  auto logits = model.net->logits(states, decoder_ids.to(torch::kInt64));
  auto cpu = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat).contiguous(); };
  io::save_safetensors(o.output,
                       {{"image_features", cpu(image_features)},
                        {"encoder_hidden_states", cpu(states)},
                        {"logits", cpu(logits)}},
                       metadata);
}

}  // namespace

void register_debug_florence2(CLI::App& debug) {
  auto opt = std::make_shared<Florence2DebugOptions>();
  auto* cmd = debug.add_subcommand("florence2", "Florence-2's image features, encoder states and logits, or generation");
  cmd->add_option("--model_dir", opt->model_dir,
                  "Florence-2 folder: config.json, pytorch_model.bin or model.safetensors, vocab.json, merges.txt")
      ->required();
  cmd->add_option("--inputs", opt->inputs,
                  "safetensors with pixel_values [B,3,H,W] float32, input_ids [B,L] (the prompt, <s>...</s>) and, "
                  "without --generate, decoder_input_ids [B,T]")
      ->required();
  cmd->add_option("--output", opt->output,
                  "safetensors to write: image_features, encoder_hidden_states, logits (float32); with --generate "
                  "sequences [B,T] int64 and the decoded texts in the metadata (\"texts\", a JSON list)")
      ->required();
  cmd->add_flag("--generate", opt->generate, "Generate from the prompt instead of teacher-forced logits");
  cmd->add_option("--num_beams", opt->num_beams, "Beams (1 = greedy; default: config.json's, 3 for Florence-2)");
  cmd->add_option("--max_new_tokens", opt->max_new_tokens, "Most tokens generated after the start token")
      ->capture_default_str();
  cmd->add_option("--dtype", opt->dtype, "Compute precision: fp32, fp16 or bf16")->capture_default_str();
  cmd->add_option("--device", opt->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->callback([opt] { run_florence2_debug(*opt); });
}

}  // namespace ls::cli
