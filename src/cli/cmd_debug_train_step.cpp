// `lorastudio debug train-step`: one LoRA training step of the UNet on given tensors, for parity
// checks of the training objective against kohya at full size. A stable interface: the flags and
// tensor names stay as they are. The objective is the trainer's own (train/train_step).
#include <cstdio>

#include <torch/torch.h>

#include "cli/commands.h"
#include "cli/debug_inputs.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/strings.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "models/checkpoint.h"
#include "train/adafactor.h"
#include "train/adamw.h"
#include "train/prodigy.h"
#include "train/train_step.h"

namespace ls::cli {

namespace {

struct TrainStepOptions {
  std::string model, lora_init, inputs, output, config;
  std::string optimizer = "AdamW";
  std::vector<std::string> optimizer_args;
  double learning_rate = 1e-4;
  double max_grad_norm = 1.0;
  train::LossOptions loss;
  std::string loss_type = "l2", huber_schedule = "snr";
  bool zero_terminal_snr = false;
  std::string dtype = "fp32";
  std::string device = "cpu";
};

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainStepOptions& o, std::vector<torch::Tensor> params) {
  const std::string kind = core::ascii_lower(o.optimizer);
  if (kind == "adamw")
    return std::make_unique<torch::optim::AdamW>(params, train::parse_adamw_args(o.optimizer_args, o.learning_rate));
  if (kind == "adafactor") {
    train::AdafactorOptions a = train::parse_adafactor_args(o.optimizer_args);
    if (!a.relative_step()) a.lr(o.learning_rate);
    return std::make_unique<train::Adafactor>(params, a);
  }
  if (kind == "prodigy")
    return std::make_unique<train::Prodigy>(params, train::parse_prodigy_args(o.optimizer_args).lr(o.learning_rate));
  LS_FAIL("--optimizer ", o.optimizer, " is not available; use AdamW, Adafactor or Prodigy");
}

void check_shape(const torch::Tensor& t, const char* name, int64_t dims, const std::string& file) {
  LS_CHECK(t.dim() == dims, file, ": '", name, "' must have ", dims, " dimensions, got ", shape_text(t));
}

void run_train_step(const TrainStepOptions& o) {
  const auto device = core::parse_device(o.device);
  const auto dtype = core::parse_dtype(o.dtype);
  // Inputs in float32 (the trainer's latents, noise and loss are float32); the UNet casts to dtype.
  const DebugInputs in(o.inputs, device, torch::kFloat);
  train::StepInputs step;
  step.latents = in.get("latents", "debug train-step");
  step.context = in.get("context", "debug train-step");
  step.y = in.get("y", "debug train-step");
  step.noise = in.get("noise", "debug train-step");
  step.timesteps = in.get("timesteps", "debug train-step");
  check_shape(step.latents, "latents", 4, in.path());
  check_shape(step.context, "context", 3, in.path());
  check_shape(step.y, "y", 2, in.path());
  LS_CHECK(step.noise.sizes() == step.latents.sizes(), in.path(), ": 'noise' ", shape_text(step.noise),
           " must have the shape of 'latents' ", shape_text(step.latents));
  LS_CHECK(step.timesteps.dim() == 1 && step.timesteps.size(0) == step.latents.size(0) &&
               step.timesteps.scalar_type() == torch::kLong,
           in.path(), ": 'timesteps' must be int64 [", step.latents.size(0), "], got ", shape_text(step.timesteps));
  step.loss_weights = torch::ones({step.latents.size(0)}, step.latents.options());
  if (in.has("ip_noise")) step.ip_noise = in.get("ip_noise", "debug train-step");
  if (in.has("mask")) step.mask = in.get("mask", "debug train-step");
  LS_CHECK(!step.ip_noise.defined() || step.ip_noise.sizes() == step.latents.sizes(), in.path(), ": 'ip_noise' ",
           shape_text(step.ip_noise), " must have the shape of 'latents' ", shape_text(step.latents));
  train::LossOptions objective = o.loss;
  objective.type = train::parse_loss_type(o.loss_type);
  objective.huber_schedule = train::parse_huber_schedule(o.huber_schedule);
  const models::NoiseSchedule schedule = models::NoiseSchedule::sdxl_trained(o.zero_terminal_snr);

  // The UNet alone: the text encoders' LoRA cannot learn from a given context.
  models::SdxlModel model = models::load_sdxl_checkpoint(o.model, o.config, {true, false, false}, device, dtype);
  for (auto& p : model.unet->parameters()) p.set_requires_grad(false);
  lora::LoadedLora loaded = lora::load_lora(o.lora_init, model);
  if (!loaded.unmatched.empty()) {
    std::fprintf(stderr, "note: %s: %zu modules outside the UNet (text encoders) are not trained by this step\n",
                 o.lora_init.c_str(), loaded.unmatched.size());
  }
  lora::LoraNetwork network = loaded.network;
  network->to(device, torch::kFloat);  // float32 master weights, as the trainer keeps them
  network->apply();
  network->train();
  std::vector<torch::Tensor> params;
  for (auto& p : network->parameters()) {
    p.set_requires_grad(true);
    params.push_back(p);
  }
  auto optimizer = make_optimizer(o, params);

  const train::LossParts loss = train::step_loss(model.unet, schedule, step, dtype, objective);
  loss.loss.backward();
  std::vector<std::pair<std::string, torch::Tensor>> out{{"loss", loss.loss.detach().to(torch::kCPU, torch::kFloat)}};
  // Copies: clipping below scales the gradients in place.
  for (const auto& [key, g] : lora::lora_gradients(*network))
    out.emplace_back("grad." + key, g.to(torch::kCPU, torch::kFloat).clone());
  // The total 2-norm before clipping, with the trainer's clipping.
  const torch::Tensor norm = o.max_grad_norm > 0 ? train::clip_grad_norm(params, o.max_grad_norm) : train::grad_norm(params);
  const double grad_norm = norm.item<double>();
  out.emplace_back("grad_norm", norm.detach().to(torch::kCPU, torch::kFloat));
  optimizer->step();
  for (const auto& [key, t] : lora::lora_state(*network)) out.emplace_back(key, t.detach().to(torch::kCPU, torch::kFloat));
  io::save_safetensors(o.output, out, {{"optimizer", o.optimizer}, {"dtype", o.dtype}});
  std::printf("loss %.9g grad_norm %.9g (%zu LoRA tensors)\n", loss.loss.item<double>(), grad_norm, params.size());
}

}  // namespace

void register_debug_train_step(CLI::App& debug) {
  auto opts = std::make_shared<TrainStepOptions>();
  auto* cmd = debug.add_subcommand(
      "train-step",
      "One LoRA training step of the UNet (the trainer's objective) on given tensors.\n"
      "  inputs:  latents [B,4,h,w] (scaled), context [B,77,2048], y [B,2816], noise [B,4,h,w],\n"
      "           timesteps [B] int64; optional: ip_noise [B,4,h,w] (input perturbation, added to\n"
      "           the UNet input only), mask [B,1,H,W] (loss mask, area-resized to the latent)\n"
      "  outputs: loss [], grad_norm [] (before clipping), grad.<kohya key> for every trained LoRA\n"
      "           tensor, and every LoRA tensor after one optimizer step (float32)");
  cmd->add_option("--model", opts->model, "SDXL checkpoint (.safetensors) or diffusers folder")->required()->check(CLI::ExistingPath);
  cmd->add_option("--lora-init", opts->lora_init, "The LoRA before the step (kohya format)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--inputs", opts->inputs, "Input tensors (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--output", opts->output, "Output tensors (.safetensors, float32)")->required();
  cmd->add_option("--config", opts->config, "Architecture JSON for non-SDXL-sized test models")->check(CLI::ExistingFile);
  cmd->add_option("--optimizer", opts->optimizer, "AdamW, Adafactor or Prodigy")->capture_default_str();
  cmd->add_option("--optimizer_args", opts->optimizer_args, "kohya optimizer_args (\"weight_decay=0.01\" ...)");
  cmd->add_option("--learning_rate", opts->learning_rate, "Learning rate")->capture_default_str();
  cmd->add_option("--max_grad_norm", opts->max_grad_norm, "Gradient clipping bound (0: none)")->capture_default_str();
  cmd->add_option("--min_snr_gamma", opts->loss.min_snr_gamma, "min-SNR-gamma weighting (0: off)")->capture_default_str();
  cmd->add_option("--loss_type", opts->loss_type, "l2, l1, huber or smooth_l1")->capture_default_str();
  cmd->add_option("--huber_schedule", opts->huber_schedule, "constant, exponential or snr")->capture_default_str();
  cmd->add_option("--huber_c", opts->loss.huber_c, "huber / smooth_l1 threshold")->capture_default_str();
  cmd->add_option("--huber_scale", opts->loss.huber_scale, "huber_c scale")->capture_default_str();
  cmd->add_flag("--v_parameterization", opts->loss.v_prediction, "the target is the velocity (v-prediction)");
  cmd->add_flag("--zero_terminal_snr", opts->zero_terminal_snr, "rescale the schedule to zero terminal SNR");
  cmd->add_flag("--scale_v_pred_loss_like_noise_pred", opts->loss.scale_v_pred_loss_like_noise_pred,
                "weigh the loss by snr / (snr + 1)");
  cmd->add_option("--v_pred_like_loss", opts->loss.v_pred_like_loss, "v-prediction-like loss share (0: off)")
      ->capture_default_str();
  cmd->add_flag("--debiased_estimation_loss", opts->loss.debiased_estimation, "weigh the loss by 1 / sqrt(snr)");
  cmd->add_option("--dtype", opts->dtype, "UNet precision: fp32, fp16 or bf16 (the LoRA stays fp32)")->capture_default_str();
  cmd->add_option("--device", opts->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->callback([opts] { run_train_step(*opts); });
}

}  // namespace ls::cli
