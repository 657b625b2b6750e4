// Continuing training from a LoRA file (kohya's network_weights / dim_from_weights): the network's
// modules taken from the file, and the file's tensors loaded into the fresh network. Matches
// kohya-ss/sd-scripts train_network.py (create_network_from_weights when dim_from_weights, then
// apply_to and load_weights) and networks/lora.py create_network_from_weights.
#pragma once

#include <string>
#include <vector>

#include "lora/network.h"
#include "train/train_config.h"

namespace ls::train {

/// With dim_from_weights, the network is the file's modules at the file's ranks and alphas; as
/// kohya's create_network_from_weights it then takes no dropouts, block_dims or LoRA+ ratios (a
/// note says which were given), and keeps down/mid/up_lr_weight. Without it, nothing changes.
void apply_dim_from_weights(const TrainConfig& config, lora::LoraNetworkOptions& options,
                            std::vector<std::string>& notes);

/// network_weights into the fresh network (kohya's load_weights, strict=False): a note with the
/// count of modules loaded and one line per part for what was left out or not in the file.
void load_start_weights(const TrainConfig& config, lora::LoraNetworkImpl& network,
                        const lora::LoraNetworkOptions& options, std::vector<std::string>& notes);

}  // namespace ls::train
