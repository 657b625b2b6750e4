// kohya's network flags (--network_dim, --network_alpha, --network_module, --network_args
// conv_dim=... algo=loha ...) bound to lora::LoraNetworkOptions, shared by `plan` and the debug
// commands; --network_args is read by the training's own parser (train::network_options).
#pragma once

#include <CLI/CLI.hpp>

#include "lora/network.h"

namespace ls::cli {

void add_network_options(CLI::App& cmd, lora::LoraNetworkOptions& o);

}  // namespace ls::cli
