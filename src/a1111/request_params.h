// Between an ImageRequest and the A1111 generation parameters stored in its PNG: what `sample`
// writes, and what `sample --from-png` reads back to render the same image again.
#pragma once

#include <string>
#include <vector>

#include "a1111/file_hashes.h"
#include "a1111/infotext.h"
#include "models/model_prediction.h"
#include "sample/request.h"

namespace ls::a1111 {

/// Where lorastudio keeps per-user caches (file hashes): $LORASTUDIO_CACHE, else
/// $XDG_CACHE_HOME/lorastudio, else ~/.cache/lorastudio.
std::string user_cache_dir();

/// The parameters of a request rendered with `checkpoint` (name, A1111 model hash; LoRA names =
/// file stems, hashes) and, when not "", a separate `vae` (A1111's "VAE": the file name,
/// "VAE hash": vae_hash). With `paths`, also lorastudio's "Model path" / "Lora paths" / "VAE path"
/// (absolute), which let `--from-png` find the files but show local folder names to whoever gets
/// the image.
GenerationParams generation_params(const sample::ImageRequest& request, const std::string& checkpoint, FileHashCache& hashes,
                                   bool paths = true, const std::string& vae = "");

/// The infotext keys of a separate VAE (GenerationParams::extra).
inline constexpr const char* kVaeKey = "VAE";
inline constexpr const char* kVaeHashKey = "VAE hash";
inline constexpr const char* kVaePathKey = "VAE path";

/// A model sampled as other than SDXL's epsilon prediction says so in its image: "Prediction: v"
/// (lorastudio's key; A1111 keeps unknown keys), and for the zero-terminal-SNR schedule A1111's own
/// "Noise Schedule: Zero Terminal SNR" (its sd_noise_schedule option). Nothing for epsilon.
inline constexpr const char* kPredictionKey = "Prediction";
inline constexpr const char* kNoiseScheduleKey = "Noise Schedule";
void add_prediction(GenerationParams& params, const models::ModelPrediction& prediction);
/// What those keys say (epsilon on the default schedule when absent).
models::ModelPrediction prediction_of(const GenerationParams& params);

/// The request the parameters describe. A LoRA's file is its "Lora paths" entry when that file
/// exists, else <dir>/<name>.safetensors in the first of lora_dirs that has it; ls::Error naming
/// the LoRA and what to pass otherwise.
sample::ImageRequest request_from_params(const GenerationParams& params, const std::vector<std::string>& lora_dirs,
                                 const std::string& name_for_errors);

}  // namespace ls::a1111
