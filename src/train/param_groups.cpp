#include "train/param_groups.h"

#include <map>

#include "core/error.h"
#include "core/strings.h"
#include "lora/network.h"

namespace ls::train {
namespace {

// assemble_params(loras, lr, ratio): the lora group, then the plus group (lora_up) when a ratio is
// set; a group without parameters or with lr 0 is left out ("NO LR skipping!").
void pg_assemble(const std::vector<LoraParamRef>& refs, const std::vector<size_t>& indices, double lr,
                 std::optional<double> ratio, const std::string& description, std::vector<ParamGroupPlan>& out) {
  ParamGroupPlan lora{description, lr, {}};
  ParamGroupPlan plus{description + " plus", ratio ? lr * *ratio : 0.0, {}};
  for (size_t i : indices) (ratio && refs[i].up ? plus : lora).params.push_back(i);
  for (ParamGroupPlan* g : {&lora, &plus})
    if (!g->params.empty() && g->lr != 0.0) out.push_back(std::move(*g));
}

}  // namespace

std::vector<ParamGroupPlan> kohya_param_groups(const std::vector<LoraParamRef>& refs, std::optional<double> text_encoder_lr,
                                               std::optional<double> unet_lr, double learning_rate,
                                               const lora::BlockArgs& blocks) {
  std::vector<size_t> te, unet;
  for (size_t i = 0; i < refs.size(); ++i) (refs[i].unet ? unet : te).push_back(i);
  std::vector<ParamGroupPlan> out;
  if (!te.empty())
    pg_assemble(refs, te, text_encoder_lr.value_or(learning_rate), blocks.loraplus_ratio(false), "textencoder", out);
  if (unet.empty()) return out;
  const double base = unet_lr.value_or(learning_rate);
  if (!blocks.lr_weights) {
    pg_assemble(refs, unet, base, blocks.loraplus_ratio(true), "unet", out);
    return out;
  }
  // kohya decides SDXL by the names: without any input/output block module (a middle-block-only
  // network) it asks for SD 1.x indices, which SDXL names do not have (-1, Python's last weight).
  bool sdxl = false;
  for (size_t i : unet)
    sdxl = sdxl || refs[i].module.find("input_blocks") != std::string::npos ||
           refs[i].module.find("output_blocks") != std::string::npos;
  std::vector<int> order;  // block indices by first appearance, as kohya's dict
  std::map<int, std::vector<size_t>> by_block;
  for (size_t i : unet) {
    const int idx = lora::kohya_block_index(refs[i].module, sdxl);
    if (!by_block.count(idx)) order.push_back(idx);
    by_block[idx].push_back(i);
  }
  const std::vector<double>& w = *blocks.lr_weights;
  for (int idx : order) {
    const double weight = w[static_cast<size_t>((idx + static_cast<int>(w.size())) % static_cast<int>(w.size()))];
    pg_assemble(refs, by_block[idx], base * weight, blocks.loraplus_ratio(true), str_cat("unet_block", idx), out);
  }
  return out;
}

std::vector<LoraParamRef> lora_param_refs(const lora::LoraNetworkImpl& network, std::vector<at::Tensor>& tensors) {
  std::vector<LoraParamRef> refs;
  for (const auto& [slot, module] : network.modules()) {
    for (const auto& item : module->named_parameters()) {
      refs.push_back({slot.name, slot.part == lora::Part::kUnet, item.key().find("lora_up") != std::string::npos});
      tensors.push_back(item.value());
    }
  }
  return refs;
}

void require_prodigy_group_lrs(const std::vector<ParamGroupPlan>& groups, const TrainConfig& c) {
  if (core::ascii_lower(c.optimizer_type) != "prodigy") return;
  for (const ParamGroupPlan& g : groups) {
    if (g.lr == groups.front().lr) continue;
    const bool plus = g.description.find(" plus") != std::string::npos;
    LS_FAIL("optimizer_type Prodigy adapts one step size for every parameter group, but the group ",
            groups.front().description, " has lr ", groups.front().lr, " and ", g.description, " lr ", g.lr,
            "; prodigyopt would stop at its first step: ",
            plus ? "drop the LoRA+ ratio (loraplus_*lr_ratio)" : "give down/mid/up_lr_weight only 0 or 1",
            ", or use AdamW");
  }
}

void require_prodigy_loraplus(const TrainConfig& c, const lora::BlockArgs& blocks) {
  if (core::ascii_lower(c.optimizer_type) != "prodigy") return;
  for (const bool unet : {false, true}) {
    const bool trained = unet ? !c.network_train_text_encoder_only : !c.network_train_unet_only;
    const std::optional<double> ratio = blocks.loraplus_ratio(unet);
    LS_CHECK(!trained || !ratio || *ratio == 1.0 || *ratio == 0.0, "optimizer_type Prodigy adapts one step size for every parameter ",
             "group, but LoRA+ (network_args loraplus_", unet ? "unet_" : "text_encoder_", "lr_ratio or ",
             "loraplus_lr_ratio = ", ratio.value_or(0), ") gives lora_up another lr; prodigyopt would stop at its first ",
             "step: drop the LoRA+ ratio or use AdamW");
  }
}

}  // namespace ls::train
