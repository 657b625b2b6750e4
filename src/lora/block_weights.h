// kohya's block-wise LoRA settings for SDXL: the block index of a module name, the learning-rate
// weight of each block (down_lr_weight / mid_lr_weight / up_lr_weight with their presets), the
// rank and alpha of each block (block_dims / block_alphas / conv_block_dims / conv_block_alphas)
// and the LoRA+ ratios, parsed from network_args. Matches kohya-ss/sd-scripts networks/lora.py
// (create_network, parse_block_lr_kwargs, get_block_lr_weight, get_block_dims_and_alphas,
// remove_block_dims_and_alphas, get_block_index) at 48d368fa, including where it fails.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ls::lora {

/// kohya's SDXL blocks: 0 the time and label embeddings (no LoRA), 1..9 input_blocks 0..8,
/// 10..12 middle_block 0..2, 13..21 output_blocks 0..8, 22 out (no LoRA).
constexpr int kSdxlBlockCount = 23;
/// Entries of down_lr_weight and up_lr_weight for SDXL (kohya's SDXL_NUM_OF_BLOCKS), of mid_lr_weight.
constexpr int kSdxlDownUpBlocks = 9;
constexpr int kSdxlMidBlocks = 3;

/// kohya's get_block_index: the block of a module name (above) with is_sdxl; with !is_sdxl the SD 1.x
/// diffusers names (down_blocks_i_..., mid_block_, up_blocks_i_...: 0..24). -1 for any other name.
int kohya_block_index(const std::string& lora_name, bool is_sdxl = true);

/// A module's rank and alpha (rank 0: the module is not made).
struct ModuleRank {
  int64_t rank = 0;
  double alpha = 0;
};

/// Rank and alpha of each of the 23 blocks, as get_block_dims_and_alphas leaves them (zero-lr blocks
/// at rank 0). conv_dims empty: kohya's None, the ResBlocks and Down/Upsamples get no LoRA at all.
struct BlockRanks {
  std::vector<int64_t> dims;
  std::vector<double> alphas;
  std::vector<int64_t> conv_dims;
  std::vector<double> conv_alphas;
};

/// kohya networks.lora's block-wise network_args, parsed as create_network does.
struct BlockArgs {
  /// The 23 lr weights, when down/mid/up_lr_weight is given (parse_block_lr_kwargs).
  std::optional<std::vector<double>> lr_weights;
  /// Per-block ranks when block_dims or an lr weight is given (kohya's "block_dims mode").
  std::optional<BlockRanks> ranks;
  std::optional<double> loraplus_lr_ratio, loraplus_unet_lr_ratio, loraplus_text_encoder_lr_ratio;

  /// The LoRA+ ratio of a part, as `self.loraplus_unet_lr_ratio or self.loraplus_lr_ratio` (a 0
  /// part ratio falls back to the common one); nullopt: no separate lora_up group.
  std::optional<double> loraplus_ratio(bool unet) const;
};

/// The network_args keys BlockArgs reads.
const std::vector<std::string>& block_arg_keys();

/// create_network's block part over `args` (network_args key -> value text; only block_arg_keys()).
/// conv_dim / conv_alpha: kohya's network_args conv_dim (nullopt: not given). Errors are one line
/// naming network_args and the key, also where kohya itself stops with a Python exception (an
/// unknown preset, a down/up list too long while the other is absent, a wrong block count);
/// `notes` gets kohya's warnings that change what trains (lists cut or filled with 1.0).
BlockArgs parse_block_args(const std::map<std::string, std::string>& args, int64_t network_dim, double network_alpha,
                           std::optional<int64_t> conv_dim, std::optional<double> conv_alpha,
                           std::vector<std::string>* notes = nullptr);

/// create_modules' rank and alpha of a U-Net module in block mode: block_dims for Linear and 1x1
/// convs, conv_block_dims for 3x3 convs; inside a ResBlock / Downsample / Upsample only with
/// conv_block_dims (kohya adds those containers to its targets only then).
ModuleRank block_module_rank(const std::string& lora_name, bool conv3x3, bool in_conv_block, const BlockRanks& ranks);

}  // namespace ls::lora
