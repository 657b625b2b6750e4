// SDXL txt2img; see pipeline.h for the references.
#include "sample/pipeline.h"

#include <cmath>
#include <filesystem>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "core/error.h"
#include "io/image.h"
#include "lora/kohya_format.h"
#include "models/model_source.h"
#include "models/sdxl_conditioner.h"
#include "sample/cfg_denoiser.h"
#include "sample/prompt_encoder.h"
#include "sample/samplers.h"

namespace ls::sample {

namespace {

text::ClipTokenizer load_tokenizer(const ModelSource& source) {
  return text::ClipTokenizer::from_file(models::require_tokenizer(source.tokenizer, source.checkpoint, "sample"));
}

}  // namespace

Pipeline::Pipeline(const ModelSource& source)
    : model_(models::load_sdxl_model({source.checkpoint, source.config, source.vae}, models::Components::all(),
                                     source.device, source.dtype)),
      tokenizer_(load_tokenizer(source)),
      device_(source.device),
      prediction_(models::resolve_prediction(source.prediction, source.checkpoint)),
      schedule_(models::NoiseSchedule::sdxl_trained(prediction_.zero_terminal_snr)) {
  model_.unet->eval();
  model_.te1->eval();
  model_.te2->eval();
  model_.vae->eval();
  // SDXL's VAE overflows in fp16 (A1111's --no-half-vae); decoding in float32 costs ~80 MB more.
  model_.vae->to(torch::kFloat);
}

Pipeline::Pipeline(models::SdxlModel model, text::ClipTokenizer tokenizer, c10::Device device,
                   models::ModelPrediction prediction)
    : model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      device_(device),
      prediction_(prediction),
      schedule_(models::NoiseSchedule::sdxl_trained(prediction.zero_terminal_snr)) {}

void validate_request(const ImageRequest& r) {
  LS_CHECK(r.steps >= 1 && r.steps <= 1000, "sample: steps ", r.steps, " is out of range; use 1..1000");
  LS_CHECK(r.width >= 64 && r.height >= 64 && r.width % 64 == 0 && r.height % 64 == 0, "sample: size ", r.width, "x",
           r.height, " is not a multiple of 64; use e.g. 1024x1024, 896x1152, 64x64");
  LS_CHECK(std::isfinite(r.cfg_scale), "sample: CFG scale must be a finite number");
  LS_CHECK(r.seed >= 0, "sample: seed ", r.seed, " is negative; resolve random seeds (-1) before sampling");
  (void)parse_sampler(r.sampler, r.schedule_type);
  for (const auto& l : r.loras) {
    LS_CHECK(std::isfinite(l.strength), l.path, ": LoRA strength must be a finite number");
    LS_CHECK(std::filesystem::is_regular_file(l.path), l.path, ": LoRA file not found; check the path given to --lora");
  }
}

void Pipeline::use_loras(const std::vector<LoraSpec>& loras) {
  for (auto& network : attached_) network->remove();
  attached_.clear();
  for (const auto& spec : loras) {
    auto it = loras_.find(spec.path);
    if (it == loras_.end()) {
      auto loaded = lora::load_lora(spec.path, model_);
      loaded.network->to(device_, model_.unet->parameters().front().scalar_type());
      it = loras_.emplace(spec.path, loaded.network).first;
    }
    it->second->set_multiplier(spec.strength);
    it->second->apply();
    attached_.push_back(it->second);
  }
}

cv::Mat Pipeline::generate(const ImageRequest& r, const StepFn& on_step) {
  validate_request(r);
  torch::NoGradGuard no_grad;
  use_loras(r.loras);
  const auto spec = parse_sampler(r.sampler, r.schedule_type);

  models::SdxlConditioner conditioner(model_.te1, model_.te2);
  const auto text = encode_prompt_pair(conditioner, tokenizer_, r.prompt, r.negative_prompt);
  const auto& pos = text.cond;
  const auto& neg = text.uncond;
  const auto size = torch::tensor({r.height, r.width}, torch::kLong);
  const auto crop = torch::zeros({2}, torch::kLong);
  UnetConditioning cond{pos.context, models::size_embedding(pos.pooled_g, size, crop, size)};
  UnetConditioning uncond{neg.context, models::size_embedding(neg.pooled_g, size, crop, size)};

  // A1111: the latent noise comes from a CPU generator seeded with the image's seed, so an image
  // does not depend on the device's RNG; later (ancestral) noise continues the same stream.
  const int64_t down = model_.vae->config().downscale();
  const std::vector<int64_t> shape = {1, model_.config.unet.in_channels, r.height / down, r.width / down};
  auto generator = at::detail::createCPUGenerator(static_cast<uint64_t>(r.seed));
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  const auto noise = at::randn(shape, generator, f32).to(device_);
  const auto sigmas = sampler_sigmas(spec, schedule_, r.steps).to(device_);
  const auto x = noise * sigmas[0];
  const NoiseFn noise_fn = [&](double, double) { return at::randn(shape, generator, f32).to(device_); };
  const StepCallback callback = [&](const StepInfo& info) {
    if (on_step) on_step(info.step + 1, info.steps);
  };

  auto denoiser = cfg_denoiser(model_.unet, schedule_, cond, uncond, r.cfg_scale, prediction_.v);
  const auto latent = run_sampler(spec, denoiser, x, sigmas, noise_fn, callback);  // [1,4,h,w]
  const auto image = model_.vae->decode(latent / model_.config.vae.scale_factor);  // [1,3,H,W]
  return io::tensor_to_image(image[0].to(torch::kFloat).cpu());
}

}  // namespace ls::sample
