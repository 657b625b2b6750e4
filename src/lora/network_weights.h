// Starting a network from a LoRA file (kohya's network_weights): the ranks and alphas a file's
// modules have (dim_from_weights) and loading its tensors into a network made for training.
// Matches kohya-ss/sd-scripts networks/lora.py create_network_from_weights (modules_dim from
// lora_down's first dimension, modules_alpha from `alpha`, absent: = rank) and LoRANetwork.load_weights
// (load_state_dict with strict=False: what the file lacks keeps its initialisation, what the
// network lacks is left out, a shape that differs is an error).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "lora/network.h"

namespace ls::lora {

/// create_network_from_weights' modules_dim / modules_alpha of a kohya LoRA file, by module name.
/// Errors name the file: not a LoRA, or no lora_down weights at all.
std::map<std::string, ModuleRank> module_ranks_from_file(const std::string& path);

struct WeightsLoadReport {
  std::vector<std::string> loaded;      // modules whose tensors came from the file
  std::vector<std::string> missing;     // modules of the network the file lacks (they keep their init)
  std::vector<std::string> unexpected;  // modules of the file the network lacks (left out)
};

/// Copies every tensor of the file whose key the network has (lora_down, lora_up, alpha, any dtype)
/// into the network, as load_state_dict(strict=False). A key whose shape differs is an error naming
/// the file, the first such module, both shapes and how many modules differ.
WeightsLoadReport load_network_weights(const std::string& path, LoraNetworkImpl& network);

/// What a load left out, one line per part: the file's modules of a part that is not trained
/// (network_train_unet_only / network_train_text_encoder_only), of a trained part that the network
/// lacks (other ranks or targets), and the network's modules the file lacks (fresh start).
std::vector<std::string> weights_load_summary(const std::string& path, const WeightsLoadReport& report,
                                              const LoraNetworkOptions& options);

}  // namespace ls::lora
