#include "cli/network_options.h"

namespace ls::cli {

void add_network_options(CLI::App& cmd, lora::LoraNetworkOptions& o) {
  cmd.add_option("--network_dim", o.rank, "LoRA rank")->capture_default_str();
  cmd.add_option("--network_alpha", o.alpha, "LoRA alpha (scale = alpha / rank)")->capture_default_str();
  cmd.add_option("--conv_dim", o.conv_rank, "Rank of LoRA on 3x3 convs (LoCon); 0 = none")->capture_default_str();
  cmd.add_option("--conv_alpha", o.conv_alpha, "Alpha of the conv LoRA")->capture_default_str();
  cmd.add_option("--network_dropout", o.dropout, "Dropout on the rank activations")->capture_default_str();
  cmd.add_option("--rank_dropout", o.rank_dropout, "Probability of dropping a rank channel")->capture_default_str();
  cmd.add_option("--module_dropout", o.module_dropout, "Probability of skipping a module")->capture_default_str();
  cmd.add_flag("!--network_train_text_encoder_only", o.unet, "No LoRA on the UNet");
  cmd.add_flag("!--network_train_unet_only", o.text_encoders, "No LoRA on the text encoders");
  cmd.add_option("--network_exclude", o.exclude, "Regex of module names to leave out (repeatable)");
}

}  // namespace ls::cli
