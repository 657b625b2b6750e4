// kohya-format LoRA files: `<name>.lora_down.weight`, `<name>.lora_up.weight`, `<name>.alpha` per
// module, ss_* training metadata, modelspec.* keys and the sshs hashes — what ComfyUI, A1111/Forge,
// stable-diffusion.cpp and diffusers read. Matches kohya-ss/sd-scripts networks/lora.py
// (save_weights, create_network_from_weights) and library/train_util.py (precalculate_safetensors_hashes).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lora/lora_arg.h"
#include "lora/network.h"

namespace ls::lora {

/// The ss_* / modelspec.* keys of a fresh network (callers add training hyper-parameters).
std::map<std::string, std::string> network_metadata(const LoraNetworkOptions& options, const std::string& title,
                                                    int64_t resolution_h, int64_t resolution_w);

/// The tensors of a network under kohya's keys, sorted by name (the order safetensors' writer uses).
std::vector<std::pair<std::string, torch::Tensor>> lora_state(const LoraNetworkImpl& network);
/// The gradients of the tensors that have one, under their kohya keys, sorted by name.
std::vector<std::pair<std::string, torch::Tensor>> lora_gradients(const LoraNetworkImpl& network);

/// Saves atomically in save_dtype (alpha too, as kohya), adding sshs_model_hash (SHA-256 of the
/// data section) and sshs_legacy_hash (kohya's 64 KiB at 1 MiB of the ss_*-only file).
void save_lora(const std::string& path, const LoraNetworkImpl& network, c10::ScalarType save_dtype,
               std::map<std::string, std::string> metadata);

struct LoadedLora {
  LoraNetwork network{nullptr};
  std::vector<std::string> unmatched;  // module names in the file that match no layer of the model
  std::map<std::string, std::string> metadata;
};

/// Reads a kohya-format LoRA for this model: one module per (down, up, alpha) triple, rank from the
/// tensors, alpha from the file (absent: = rank). Shape mismatches are errors naming the key; keys for
/// other architectures (SD 1.x names...) are reported as unmatched, and a file where nothing matches
/// is an error. The network is not yet applied.
LoadedLora load_lora(const std::string& path, const models::SdxlModel& model);

/// What a load left out, one line per part instead of one per module (a LoRA with text-encoder
/// modules applied to the UNet alone leaves 264 out): "PATH: 132 lora_te1 modules not applied (the
/// text encoder 1 is not loaded)", or, for a loaded part, how many match no layer with the first
/// few names. Empty when everything matched.
std::vector<std::string> unmatched_summary(const std::string& path, const std::vector<std::string>& unmatched,
                                           const models::SdxlModel& model);

}  // namespace ls::lora
