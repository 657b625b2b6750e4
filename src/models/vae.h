// The SDXL VAE: AutoencoderKL with ldm's Encoder/Decoder, quant_conv/post_quant_conv and the
// DiagonalGaussianDistribution's (mean, clamped logvar). Module paths equal the checkpoint keys
// minus "first_stage_model.". Reference: Stability-AI/generative-models
// sgm/modules/diffusionmodules/model.py (Encoder, Decoder), sgm/models/autoencoder.py,
// sgm/modules/distributions/distributions.py.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include "models/vae_blocks.h"
#include "nn/layers.h"

namespace ls::models {

struct VaeConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t ch = 128;
  std::vector<int64_t> ch_mult{1, 2, 4, 4};
  int64_t num_res_blocks = 2;  // per encoder level; the decoder has one more per level
  int64_t z_channels = 4;
  int64_t embed_dim = 4;
  double scale_factor = 0.13025;  // latent = scale_factor * sample (SDXL); not applied by the module

  /// 4 levels like SDXL (so latents are H/8 too), ch 32, 1 res block: fast tests.
  static VaeConfig tiny();
  /// Image size / latent size: 2^(levels - 1).
  int64_t downscale() const;
  /// Throws ls::Error naming the first bad field.
  void validate() const;
};
void to_json(nlohmann::json& j, const VaeConfig& c);
void from_json(const nlohmann::json& j, VaeConfig& c);

/// The posterior's parameters, each [B, embed_dim, H/downscale, W/downscale].
struct VaeMoments {
  torch::Tensor mean;
  torch::Tensor logvar;  // clamped to [-30, 20] as DiagonalGaussianDistribution does
};

/// One draw of the posterior, mean + exp(logvar / 2) * eps, in float32, with the standard-normal
/// draw given ([B,C,h,w], any float dtype): what kohya caches and trains on (unscaled). The trainer
/// draws a whole step's eps at once so the sample does not depend on how the step is split; the
/// cache draws each entry's own (data::latent_noise).
torch::Tensor sample_latent(const VaeMoments& m, const torch::Tensor& eps);

/// Throws when `latents` holds NaN/inf, naming the VAE dtype: SDXL's VAE overflows in fp16.
/// One device-to-host read: for caches, not for every training step.
void require_finite_latents(const torch::Tensor& latents, c10::ScalarType vae_dtype);

/// One encoder resolution level: `block` (num_res_blocks) and, except at the last level, `downsample`.
class VaeDownLevelImpl : public torch::nn::Module {
 public:
  VaeDownLevelImpl(int64_t in_channels, int64_t out_channels, int64_t num_blocks, bool downsample);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::ModuleList block;
  std::vector<VaeResnetBlock> blocks;  // the same modules, typed
  VaeDownsample downsample{nullptr};
};
TORCH_MODULE(VaeDownLevel);

/// One decoder resolution level: `block` (num_res_blocks + 1) and, except at level 0, `upsample`.
class VaeUpLevelImpl : public torch::nn::Module {
 public:
  VaeUpLevelImpl(int64_t in_channels, int64_t out_channels, int64_t num_blocks, bool upsample);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::ModuleList block;
  std::vector<VaeResnetBlock> blocks;
  VaeUpsample upsample{nullptr};
};
TORCH_MODULE(VaeUpLevel);

class VaeEncoderImpl : public torch::nn::Module {
 public:
  explicit VaeEncoderImpl(const VaeConfig& config);
  /// x [B, in_channels, H, W] -> [B, 2 * z_channels, H/downscale, W/downscale]
  torch::Tensor forward(const torch::Tensor& x);

  ls::nn::Conv2d conv_in{nullptr};
  torch::nn::ModuleList down;
  std::vector<VaeDownLevel> levels;  // levels[i] == down[i]
  VaeMidBlock mid{nullptr};
  ls::nn::GroupNorm norm_out{nullptr};
  ls::nn::Conv2d conv_out{nullptr};
};
TORCH_MODULE(VaeEncoder);

class VaeDecoderImpl : public torch::nn::Module {
 public:
  explicit VaeDecoderImpl(const VaeConfig& config);
  /// z [B, z_channels, h, w] -> [B, out_channels, h * downscale, w * downscale]
  torch::Tensor forward(const torch::Tensor& z);

  ls::nn::Conv2d conv_in{nullptr};
  VaeMidBlock mid{nullptr};
  /// ldm indexes `up` by resolution level (up[0] = full resolution) but runs it from the last
  /// index down to 0.
  torch::nn::ModuleList up;
  std::vector<VaeUpLevel> levels;  // levels[i] == up[i]
  ls::nn::GroupNorm norm_out{nullptr};
  ls::nn::Conv2d conv_out{nullptr};
};
TORCH_MODULE(VaeDecoder);

class AutoencoderKLImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLImpl(const VaeConfig& config = VaeConfig{});

  /// image [B, in_channels, H, W] in [-1, 1] -> posterior moments [B, embed_dim, H/8, W/8]
  /// (H/downscale, rounded down, for other configs). Computes in the parameters' dtype.
  VaeMoments encode(const torch::Tensor& image);
  /// latent [B, embed_dim, h, w], unscaled (divide a diffusion latent by scale_factor first)
  /// -> image [B, out_channels, h * downscale, w * downscale], roughly in [-1, 1].
  torch::Tensor decode(const torch::Tensor& latent);

  const VaeConfig& config() const { return config_; }

  VaeEncoder encoder{nullptr};
  VaeDecoder decoder{nullptr};
  ls::nn::Conv2d quant_conv{nullptr};       // 2 z -> 2 embed_dim, 1x1
  ls::nn::Conv2d post_quant_conv{nullptr};  // embed_dim -> z, 1x1

 private:
  torch::Tensor to_param_dtype(const torch::Tensor& x, int64_t channels, const char* what) const;

  VaeConfig config_;
};
TORCH_MODULE(AutoencoderKL);

}  // namespace ls::models
