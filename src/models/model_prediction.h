// What an SDXL model predicts and on which schedule it was trained: epsilon (SDXL base) or the
// velocity v (v-prediction fine-tunes such as NoobAI-XL v-pred), and whether the schedule was
// rescaled to zero terminal SNR. Sampling needs both (k-diffusion's DiscreteVDDPMDenoiser for v; the
// rescaled sigmas for ztsnr). Read from the model as ComfyUI does (supported_models.py SDXL
// model_type: marker tensors "v_pred" and "ztsnr" in the state dict), from kohya's
// modelspec.prediction_type = "v", or from a diffusers folder's scheduler/scheduler_config.json
// (prediction_type "v_prediction", rescale_betas_zero_snr), unless the user says otherwise.
#pragma once

#include <string>

namespace ls::models {

struct ModelPrediction {
  bool v = false;                  // the UNet predicts the velocity
  bool zero_terminal_snr = false;  // trained on the zero-terminal-SNR schedule
  bool operator==(const ModelPrediction& o) const { return v == o.v && zero_terminal_snr == o.zero_terminal_snr; }
};

/// What the model file or folder says (epsilon, default schedule when it says nothing).
ModelPrediction detect_prediction(const std::string& model_path);

/// The user's choice: "auto" (what the model says), "epsilon", "v", "v_zsnr" (v on the
/// zero-terminal-SNR schedule, ComfyUI's ModelSamplingDiscrete v_prediction + zsnr). Other names
/// are refused listing these.
ModelPrediction resolve_prediction(const std::string& choice, const std::string& model_path);
/// The same refusal without a model: for flags and keys checked before anything loads.
void check_prediction_choice(const std::string& choice);
/// The name resolve_prediction takes for a prediction: "epsilon", "v", "v_zsnr"; ("epsilon_zsnr"
/// for the combination only a training with zero_terminal_snr alone makes).
std::string prediction_name(const ModelPrediction& p);

}  // namespace ls::models
