// The SDXL UNet: SGM's UNetModel (Stability-AI/generative-models
// sgm/modules/diffusionmodules/openaimodel.py, configured by configs/inference/sd_xl_base.yaml;
// kohya-ss/sd-scripts library/sdxl_original_unet.py is the same network in one file).
// named_parameters() equals the checkpoint's `model.diffusion_model.*` keys without the prefix.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "models/unet_blocks.h"

namespace ls::models {

/// Defaults are SDXL base. SGM's `attention_resolutions` [4, 2] + `transformer_depth` [1, 2, 10] are
/// folded into one per-level list: 0 = no SpatialTransformer at that level (input and output blocks).
struct SdxlUnetConfig {
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  int64_t model_channels = 320;                // time embedding width = 4 x this
  std::vector<int64_t> channel_mult{1, 2, 4};  // per level; widths must be multiples of 32 (GroupNorm)
  int64_t num_res_blocks = 2;                  // per level (output levels have one more)
  std::vector<int64_t> transformer_depth{0, 2, 10};  // per level
  int64_t transformer_depth_middle = 10;       // >= 1
  int64_t num_head_channels = 64;              // heads = width / this
  int64_t context_dim = 2048;                  // TE1 768 + TE2 1280 hidden states
  /// Width of y: pooled TE2 embedding + 6 x 256 size embeddings (2816 = 1280 + 1536).
  int64_t adm_in_channels = 2816;
  bool use_linear_in_transformer = true;       // proj_in/out: Linear (SDXL) or 1x1 Conv2d

  /// Same architecture, small widths: model_channels 32 (widths 32/64/128), head dim 8,
  /// transformer depth {0, 1, 2} + middle 2, context_dim 64, adm_in_channels 1568 = 32 + 6 x 256
  /// (fits ClipTextConfig::tiny_te1/tiny_te2: widths 32 + 32, pooled 32).
  static SdxlUnetConfig tiny();
  /// Throws ls::Error naming `label` and the bad field.
  void validate(const std::string& label = "unet config") const;
};
void to_json(nlohmann::json& j, const SdxlUnetConfig& c);
/// Absent fields keep their defaults; unknown fields are an ls::Error.
void from_json(const nlohmann::json& j, SdxlUnetConfig& c);

class SdxlUnetImpl : public torch::nn::Module {
 public:
  /// Receives (name, activation) after each stage: "emb", "input_blocks.N", "middle_block",
  /// "output_blocks.N", "out" — to find the first block where two implementations diverge.
  using Tap = std::function<void(const std::string& name, const torch::Tensor& value)>;

  explicit SdxlUnetImpl(const SdxlUnetConfig& config = {});

  /// ε prediction. x [B, in, H, W] (H, W multiples of 2^(levels-1)), t [B] (or one value) int64
  /// or float timesteps, context [B, N, context_dim], y [B, adm_in_channels] -> [B, out, H, W].
  /// Inputs are cast to the parameters' dtype; the result has x's dtype.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context,
                        const torch::Tensor& y);

  const SdxlUnetConfig& config() const { return config_; }
  void set_tap(Tap tap) { tap_ = std::move(tap); }
  /// Recompute every ResBlock and transformer block in backward (less memory, one more forward).
  void set_gradient_checkpointing(bool enabled);

 private:
  void check_inputs(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context,
                    const torch::Tensor& y) const;
  torch::Tensor embed(const torch::Tensor& t, const torch::Tensor& y, int64_t batch);
  void build_input_blocks(std::vector<int64_t>& skip_channels);
  void build_output_blocks(std::vector<int64_t>& skip_channels);
  void tap(const std::string& name, const torch::Tensor& value) const {
    if (tap_) tap_(name, value);
  }

  SdxlUnetConfig config_;
  nn::Linear time_in_{nullptr}, time_out_{nullptr};    // time_embed.0 / .2
  nn::Linear label_in_{nullptr}, label_out_{nullptr};  // label_emb.0.0 / .0.2
  std::vector<TimestepSequential> input_blocks_;
  TimestepSequential middle_block_{nullptr};
  std::vector<TimestepSequential> output_blocks_;
  nn::GroupNorm out_norm_{nullptr};  // out.0
  nn::Conv2d out_conv_{nullptr};     // out.2
  Tap tap_;
};
TORCH_MODULE(SdxlUnet);

}  // namespace ls::models
