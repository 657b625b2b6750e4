// kohya's network flags (--network_dim, --network_alpha, --network_args conv_dim=...) bound to
// lora::LoraNetworkOptions, shared by `plan` and (later) `train`.
#pragma once

#include <CLI/CLI.hpp>

#include "lora/network.h"

namespace ls::cli {

void add_network_options(CLI::App& cmd, lora::LoraNetworkOptions& o);

}  // namespace ls::cli
