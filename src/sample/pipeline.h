// txt2img for SDXL: prompt -> conditioning (A1111 emphasis and chunks) -> seeded latent noise ->
// k-diffusion sampler over the CFG denoiser -> VAE decode, with any number of kohya LoRAs attached
// at their strengths. Follows A1111's txt2img (modules/processing.py, sd_samplers_kdiffusion.py):
// noise = randn(seed) on the CPU generator, x = noise * sigmas[0], ancestral noise drawn from the
// same generator, SDXL size conditioning original = target = (height, width), crop (0, 0).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "lora/network.h"
#include "models/model_prediction.h"
#include "models/sdxl_model.h"
#include "models/noise_schedule.h"
#include "sample/request.h"
#include "text/clip_tokenizer.h"

namespace ls::sample {

/// Checks a request without a model (sizes, steps, sampler name, LoRA files present): call it
/// before loading a checkpoint, so that a typo costs no 10 GB load.
void validate_request(const ImageRequest& request);

/// Per sampling step: step (1-based) of steps.
using StepFn = std::function<void(int64_t step, int64_t steps)>;

class Pipeline {
 public:
  /// Loads all four parts of the model (a single file or a diffusers folder; the VAE from
  /// source.vae when given) and the tokenizer (found beside the model when source.tokenizer is "").
  explicit Pipeline(const ModelSource& source);
  /// Samples with a model that is already loaded (the trainer's, LoRA under training attached);
  /// `prediction` is what it predicts (a v_parameterization training's samples are v-prediction).
  Pipeline(models::SdxlModel model, text::ClipTokenizer tokenizer, c10::Device device,
           models::ModelPrediction prediction = {});

  /// One image, 8-bit RGB. Same request, device and dtype -> same pixels. LoRAs of the request are
  /// attached for the call (files loaded once and kept), other loaded LoRAs are detached.
  cv::Mat generate(const ImageRequest& request, const StepFn& on_step = {});

  models::SdxlModel& model() { return model_; }
  const text::ClipTokenizer& tokenizer() const { return tokenizer_; }
  /// What the model is sampled as: the source's choice, or what the model says (ModelSource "auto").
  const models::ModelPrediction& prediction() const { return prediction_; }

 private:
  void use_loras(const std::vector<LoraSpec>& loras);

  models::SdxlModel model_;
  text::ClipTokenizer tokenizer_;
  c10::Device device_;
  models::ModelPrediction prediction_;
  models::NoiseSchedule schedule_;  // SDXL's, rescaled for a zero-terminal-SNR model
  std::map<std::string, lora::LoraNetwork> loras_;  // by the path as given
  std::vector<lora::LoraNetwork> attached_;
};

}  // namespace ls::sample
