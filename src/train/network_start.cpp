#include "train/network_start.h"

#include <algorithm>

#include "core/error.h"
#include "core/strings.h"
#include "lora/network_weights.h"
#include "train/optimizer_args.h"

namespace ls::train {

void apply_dim_from_weights(const TrainConfig& c, lora::LoraNetworkOptions& o, std::vector<std::string>& notes) {
  if (!c.dim_from_weights) return;
  o.module_ranks = lora::module_ranks_from_file(c.network_weights);
  std::vector<std::string> ignored;
  if (o.dropout > 0) ignored.push_back("network_dropout");
  if (o.rank_dropout > 0) ignored.push_back("rank_dropout");
  if (o.module_dropout > 0) ignored.push_back("module_dropout");
  o.dropout = o.rank_dropout = o.module_dropout = 0;
  for (const OptimizerArg& a : split_optimizer_args(c.network_args)) {
    const std::string& k = a.key;
    if (k == "block_dims" || k == "block_alphas" || k == "conv_block_dims" || k == "conv_block_alphas" ||
        k.rfind("loraplus_", 0) == 0 || k == "conv_dim" || k == "conv_alpha")
      ignored.push_back(k);
  }
  o.blocks.ranks.reset();
  o.blocks.loraplus_lr_ratio.reset();
  o.blocks.loraplus_unet_lr_ratio.reset();
  o.blocks.loraplus_text_encoder_lr_ratio.reset();
  size_t unet = 0;
  for (const auto& [name, r] : *o.module_ranks) unet += name.rfind("lora_unet_", 0) == 0;
  notes.push_back(str_cat("dim_from_weights: ", o.module_ranks->size(), " modules (", unet, " lora_unet) with the ranks and ",
                          "alphas of ", c.network_weights));
  if (!ignored.empty()) {
    std::string list;
    for (const std::string& k : ignored) list += (list.empty() ? "" : ", ") + k;
    notes.push_back(str_cat("dim_from_weights: ", list, " ignored, as kohya's create_network_from_weights takes ",
                            "only the file's modules (down/mid/up_lr_weight still apply)"));
  }
}

void load_start_weights(const TrainConfig& c, lora::LoraNetworkImpl& network, const lora::LoraNetworkOptions& o,
                        std::vector<std::string>& notes) {
  const lora::WeightsLoadReport report = lora::load_network_weights(c.network_weights, network);
  notes.push_back(str_cat("network_weights: ", report.loaded.size(), " of the network's ", network.modules().size(),
                          " modules start from ", c.network_weights));
  for (std::string& line : lora::weights_load_summary(c.network_weights, report, o))
    notes.push_back("network_weights: " + line);
}

}  // namespace ls::train
