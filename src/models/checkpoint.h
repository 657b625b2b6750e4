// SDXL single-file checkpoints: load the asked-for parts into lorastudio's modules (one tensor
// in flight at a time, every problem reported at once) and write a model in the same layout.
// Layout: SGM's sd_xl_base_1.0.safetensors (model.diffusion_model.*, conditioner.embedders.0.transformer.*,
// conditioner.embedders.1.model.*, first_stage_model.*).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "models/sdxl_model.h"

namespace ls::io {
class SafetensorsReader;
}

namespace ls::models {

inline constexpr const char* kUnetPrefix = "model.diffusion_model.";
inline constexpr const char* kTe1Prefix = "conditioner.embedders.0.transformer.";
inline constexpr const char* kTe2Prefix = "conditioner.embedders.1.model.";
inline constexpr const char* kVaePrefix = "first_stage_model.";
/// Metadata key under which lorastudio stores the architecture of models it writes.
inline constexpr const char* kConfigMetadataKey = "lorastudio.config";

/// The architecture to build for a checkpoint: config_path when given, else the config stored in
/// the file's metadata by `debug make-model`, else full-size SDXL.
SdxlConfig resolve_config(const io::SafetensorsReader& reader, const std::string& config_path);

/// Loads the asked-for parts of a single-file checkpoint or of a diffusers folder (path is a
/// folder: diffusers_folder.h). Fails (one line) when the file is not an SDXL base checkpoint
/// (saying what it is), or listing missing, unexpected and mis-shaped keys.
SdxlModel load_sdxl_checkpoint(const std::string& path, const std::string& config_path, Components parts,
                               c10::Device device, c10::ScalarType dtype);

/// SHA-256 over the names, dtypes, shapes and bytes of the tensors under `prefix` (e.g. kVaePrefix),
/// in name order: identifies one part of a checkpoint for caches (a VAE's latents stay valid
/// across checkpoints, separate VAE files and diffusers folders that hold the same weights; see
/// mapped_tensors.h). Reads the part once (~170 MB for an fp16 SDXL VAE).
std::string part_fingerprint(const io::SafetensorsReader& reader, const std::string& prefix);

/// Every present part's tensors under their single-file names (TE2 fused back into open_clip's
/// in_proj; TE1 with position_ids, as SGM's files have it), in the order they are written.
std::vector<std::pair<std::string, torch::Tensor>> checkpoint_tensors(SdxlModel& model);

/// Writes every present part in the single-file layout; floating tensors stored as save_dtype when
/// given. The config goes into the metadata so the file can be loaded without --config.
void save_sdxl_checkpoint(const std::string& path, SdxlModel& model,
                          std::optional<c10::ScalarType> save_dtype,
                          std::map<std::string, std::string> metadata = {});

}  // namespace ls::models
