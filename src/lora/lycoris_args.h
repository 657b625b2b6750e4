// lycoris.kohya's network_args (lycoris-lora 4.1.3 lycoris/kohya.py create_network) as kohya_ss
// writes them: algo=lora|locon|loha|lokr, preset, use_tucker, factor, decompose_both, full_matrix,
// dora_wd, wd_on_output, rs_lora, unbalanced_factorization, ...; values read the way lycoris reads
// them (its str_bool: anything but "false" is true; decompose_both: any non-empty text is true).
#pragma once

#include <string>
#include <vector>

#include "lora/network.h"

namespace ls::lora {

/// The network_module kohya_ss writes for LyCORIS.
inline constexpr const char* kLycorisModule = "lycoris.kohya";

/// The lycoris keys lorastudio reads (beside conv_dim, conv_alpha, dropout, rank_dropout,
/// module_dropout, which networks.lora shares).
const std::vector<std::string>& lycoris_arg_keys();

/// Applies one lycoris network_arg to the options; false when `key` is not a lycoris key. Values
/// lorastudio cannot honour (algo=ia3, use_scalar, train_norm, bypass_mode, a preset file) are
/// errors naming the key and what to use instead.
bool apply_lycoris_arg(LoraNetworkOptions& options, const std::string& key, const std::string& value);

/// lycoris' conv defaults: conv_dim = network_dim and conv_alpha = network_alpha unless given.
void apply_lycoris_conv_defaults(LoraNetworkOptions& options, bool conv_dim_given, bool conv_alpha_given);

}  // namespace ls::lora
