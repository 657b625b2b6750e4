// The optimizer's parameter groups of a LoRA training, as kohya-ss/sd-scripts networks/lora.py
// LoRANetwork.prepare_optimizer_params builds them: the text encoders' group, then the U-Net's (one
// per block with down/mid/up_lr_weight, lr x the block's weight), each split into lora_down and a
// lora_up "plus" group at lr x ratio with LoRA+; groups whose lr is 0 are left out (their
// parameters stay applied and frozen).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "lora/block_weights.h"
#include "train/train_config.h"

namespace ls::lora {
class LoraNetworkImpl;
}

namespace ls::train {

/// One LoRA parameter as prepare_optimizer_params sees it.
struct LoraParamRef {
  std::string module;  // kohya name, e.g. lora_unet_input_blocks_4_1_proj_in
  bool unet = false;   // in network.unet_loras (else text_encoder_loras)
  bool up = false;     // "lora_up" in its parameter name
};

struct ParamGroupPlan {
  std::string description;  // kohya's lr_descriptions: "textencoder", "unet", "unet_block5", "... plus"
  double lr = 0;
  std::vector<size_t> params;  // indices into the refs, in their order
};

/// prepare_optimizer_params(text_encoder_lr, unet_lr, learning_rate) over the refs (in the network's
/// module order, text encoders first): the groups in kohya's order, those with lr 0 left out.
std::vector<ParamGroupPlan> kohya_param_groups(const std::vector<LoraParamRef>& refs, std::optional<double> text_encoder_lr,
                                               std::optional<double> unet_lr, double learning_rate,
                                               const lora::BlockArgs& blocks);

/// The network's parameters in module order, with their refs.
std::vector<LoraParamRef> lora_param_refs(const lora::LoraNetworkImpl& network, std::vector<at::Tensor>& tensors);

/// Prodigy adapts one step size for every group, and prodigyopt stops at its first step when the
/// groups' lrs differ ("only supported for values of 0"), which kohya lets happen: refused here
/// in one line naming the two first groups that differ and the setting behind them.
void require_prodigy_group_lrs(const std::vector<ParamGroupPlan>& groups, const TrainConfig& config);

/// The same before any loading, for what the config alone decides: a LoRA+ ratio other than 1.
void require_prodigy_loraplus(const TrainConfig& config, const lora::BlockArgs& blocks);

}  // namespace ls::train
