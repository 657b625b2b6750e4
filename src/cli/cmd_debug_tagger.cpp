// `lorastudio debug tagger`: a WD14 tagger's logits for given pixels, and `debug tagger-preprocess`:
// the pixels lorastudio feeds it for an image. Stable interfaces: tests and parity scripts call them.
#include <memory>
#include <string>

#include <torch/torch.h>

#include "caption/tagger_input.h"
#include "caption/tagger_model.h"
#include "cli/commands.h"
#include "cli/debug_inputs.h"
#include "core/error.h"
#include "core/runtime.h"
#include "io/safetensors.h"

namespace ls::cli {
namespace {

struct TaggerOptions {
  std::string model_dir, inputs, output, image;
  std::string dtype = "fp32";
  std::string device = "cpu";
};

void run_tagger(const TaggerOptions& o) {
  auto device = core::parse_device(o.device);
  auto dtype = core::parse_dtype(o.dtype);
  auto model = caption::load_tagger_model(o.model_dir, device, dtype);
  DebugInputs inputs(o.inputs, device, dtype);
  auto pixels = inputs.get("pixel_values", "debug tagger");
  const int64_t s = model.config.input_size;
  LS_CHECK(pixels.dim() == 4 && pixels.size(1) == 3 && pixels.size(2) == s && pixels.size(3) == s, o.inputs,
           ": pixel_values is ", shape_text(pixels), ", the model takes [B,3,", s, ",", s, "]");
  torch::InferenceMode inference;
  auto logits = model.net->forward(pixels).to(torch::kCPU, torch::kFloat);
  io::save_safetensors(o.output, {{"logits", logits}}, {{"architecture", model.config.architecture}, {"dtype", o.dtype}});
}

void run_preprocess(const TaggerOptions& o) {
  auto config = caption::read_tagger_config(caption::tagger_file(o.model_dir, "config.json").string());
  caption::PixelSpec spec;
  spec.size = static_cast<int>(config.input_size);
  spec.mean = config.mean;
  spec.std = config.std;
  auto pixels = caption::tagger_pixels_from_file(o.image, spec);
  io::save_safetensors(o.output, {{"pixel_values", pixels}});
}

}  // namespace

void register_debug_tagger(CLI::App& debug) {
  auto opt = std::make_shared<TaggerOptions>();
  auto* cmd = debug.add_subcommand("tagger", "A WD14 tagger's logits (before the sigmoid) for pixel_values");
  cmd->add_option("--model_dir", opt->model_dir, "Tagger folder: config.json, model.safetensors")->required();
  cmd->add_option("--inputs", opt->inputs, "safetensors with pixel_values [B,3,S,S] float32")->required();
  cmd->add_option("--output", opt->output, "safetensors to write: logits [B,T] float32")->required();
  cmd->add_option("--dtype", opt->dtype, "Compute precision: fp32, fp16 or bf16")->capture_default_str();
  cmd->add_option("--device", opt->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->callback([opt] { run_tagger(*opt); });

  auto popt = std::make_shared<TaggerOptions>();
  auto* pre = debug.add_subcommand("tagger-preprocess", "The pixel_values a WD14 tagger gets for an image");
  pre->add_option("--model_dir", popt->model_dir, "Tagger folder (its config.json gives size, mean, std)")->required();
  pre->add_option("--image", popt->image, "PNG, JPEG, WebP or BMP image")->required();
  pre->add_option("--output", popt->output, "safetensors to write: pixel_values [1,3,S,S] float32")->required();
  pre->callback([popt] { run_preprocess(*popt); });
}

}  // namespace ls::cli
