#include "cli/network_options.h"

#include <memory>

#include "core/error.h"
#include "train/train_config.h"
#include "train/train_session.h"

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
  struct Given {
    std::string module = "networks.lora";
    std::vector<std::string> args;
  };
  auto given = std::make_shared<Given>();
  cmd.add_option("--network_module", given->module, "networks.lora or lycoris.kohya (LyCORIS)")->capture_default_str();
  cmd.add_option("--network_args", given->args,
                 "key=value as kohya's network_args (conv_dim=4, algo=loha, dora_wd=True, ...; repeatable)");
  // After parsing, the flags go through the training's network_args reader: one vocabulary.
  cmd.parse_complete_callback([&o, given] {
    if (given->module == "networks.lora" && given->args.empty()) return;
    train::TrainConfig c;
    c.network_dim = o.rank;
    c.network_alpha = o.alpha;
    c.conv_dim = static_cast<int>(o.conv_rank);
    c.conv_alpha = o.conv_alpha;
    c.network_dropout = o.dropout;
    c.network_module = given->module;
    c.network_args = given->args;
    c.network_train_unet_only = !o.text_encoders;
    c.network_train_text_encoder_only = !o.unet;
    LS_CHECK(c.network_module == "networks.lora" || c.network_module == "lycoris.kohya", "--network_module ",
             c.network_module, ": use networks.lora or lycoris.kohya");
    const double rank_dropout = o.rank_dropout, module_dropout = o.module_dropout;
    const std::vector<std::string> exclude = o.exclude;
    o = train::network_options(c);
    if (rank_dropout > 0) o.rank_dropout = rank_dropout;
    if (module_dropout > 0) o.module_dropout = module_dropout;
    o.exclude = exclude;
  });
}

}  // namespace ls::cli
