// SDXL VAE encoder, decoder and AutoencoderKL; reference: Stability-AI/generative-models
// sgm/modules/diffusionmodules/model.py (Encoder, Decoder), sgm/models/autoencoder.py
// (quant_conv, post_quant_conv), sgm/modules/distributions/distributions.py (logvar clamp).
#include "models/vae.h"

#include <set>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"

namespace ls::models {

namespace {
constexpr double kLogvarMin = -30.0;
constexpr double kLogvarMax = 20.0;
}  // namespace

// ---------------------------------------------------------------------------------------------
// Config

VaeConfig VaeConfig::tiny() {
  VaeConfig c;
  c.ch = 32;
  c.ch_mult = {1, 1, 2, 2};
  c.num_res_blocks = 1;
  return c;
}

int64_t VaeConfig::downscale() const {
  return ch_mult.empty() ? 1 : int64_t(1) << (ch_mult.size() - 1);
}

void VaeConfig::validate() const {
  LS_CHECK(in_channels > 0 && out_channels > 0, "VaeConfig: in_channels and out_channels must be positive");
  LS_CHECK(!ch_mult.empty() && ch_mult.size() <= 8, "VaeConfig: ch_mult needs 1 to 8 levels, got ",
           ch_mult.size());
  for (auto m : ch_mult) {
    LS_CHECK(m > 0 && (ch * m) % 32 == 0, "VaeConfig: ch * ch_mult must be a positive multiple of 32 ",
             "(GroupNorm with 32 groups), got ch ", ch, " and multiplier ", m);
  }
  LS_CHECK(ch > 0 && ch % 32 == 0, "VaeConfig: ch must be a positive multiple of 32, got ", ch);
  LS_CHECK(num_res_blocks > 0, "VaeConfig: num_res_blocks must be positive, got ", num_res_blocks);
  LS_CHECK(z_channels > 0 && embed_dim > 0, "VaeConfig: z_channels and embed_dim must be positive");
  LS_CHECK(scale_factor > 0, "VaeConfig: scale_factor must be positive, got ", scale_factor);
}

void to_json(nlohmann::json& j, const VaeConfig& c) {
  j = nlohmann::json{{"in_channels", c.in_channels}, {"out_channels", c.out_channels},
                     {"ch", c.ch},                   {"ch_mult", c.ch_mult},
                     {"num_res_blocks", c.num_res_blocks}, {"z_channels", c.z_channels},
                     {"embed_dim", c.embed_dim},     {"scale_factor", c.scale_factor}};
}

void from_json(const nlohmann::json& j, VaeConfig& c) {
  LS_CHECK(j.is_object(), "VAE config: expected a JSON object, got ", j.type_name());
  static const std::set<std::string> known{"in_channels", "out_channels", "ch",        "ch_mult",
                                           "num_res_blocks", "z_channels", "embed_dim", "scale_factor"};
  for (const auto& item : j.items()) {
    LS_CHECK(known.count(item.key()), "VAE config: unknown field \"", item.key(),
             "\"; known fields: in_channels, out_channels, ch, ch_mult, num_res_blocks, z_channels, ",
             "embed_dim, scale_factor");
  }
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) return;
    try {
      j.at(key).get_to(field);
    } catch (const nlohmann::json::exception&) {
      LS_FAIL("VAE config: field \"", key, "\" has the wrong type (", j.at(key).type_name(), ")");
    }
  };
  get("in_channels", c.in_channels);
  get("out_channels", c.out_channels);
  get("ch", c.ch);
  get("ch_mult", c.ch_mult);
  get("num_res_blocks", c.num_res_blocks);
  get("z_channels", c.z_channels);
  get("embed_dim", c.embed_dim);
  get("scale_factor", c.scale_factor);
}

// ---------------------------------------------------------------------------------------------
// Levels

VaeDownLevelImpl::VaeDownLevelImpl(int64_t in_channels, int64_t out_channels, int64_t num_blocks,
                                   bool with_downsample) {
  block = register_module("block", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_blocks; ++i) {
    blocks.emplace_back(i == 0 ? in_channels : out_channels, out_channels);
    block->push_back(blocks.back());
  }
  if (with_downsample) downsample = register_module("downsample", VaeDownsample(out_channels));
}

torch::Tensor VaeDownLevelImpl::forward(torch::Tensor x) {
  for (auto& b : blocks) x = b(x);
  return downsample ? downsample(x) : x;
}

VaeUpLevelImpl::VaeUpLevelImpl(int64_t in_channels, int64_t out_channels, int64_t num_blocks,
                               bool with_upsample) {
  block = register_module("block", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_blocks; ++i) {
    blocks.emplace_back(i == 0 ? in_channels : out_channels, out_channels);
    block->push_back(blocks.back());
  }
  if (with_upsample) upsample = register_module("upsample", VaeUpsample(out_channels));
}

torch::Tensor VaeUpLevelImpl::forward(torch::Tensor x) {
  for (auto& b : blocks) x = b(x);
  return upsample ? upsample(x) : x;
}

// ---------------------------------------------------------------------------------------------
// Encoder / decoder

VaeEncoderImpl::VaeEncoderImpl(const VaeConfig& config) {
  config.validate();
  const auto n_levels = static_cast<int64_t>(config.ch_mult.size());
  conv_in = register_module("conv_in", ls::nn::Conv2d(config.in_channels, config.ch, 3, 1, 1));
  down = register_module("down", torch::nn::ModuleList());
  int64_t block_in = config.ch;
  for (int64_t i = 0; i < n_levels; ++i) {
    int64_t block_out = config.ch * config.ch_mult[i];
    levels.emplace_back(block_in, block_out, config.num_res_blocks, /*downsample=*/i != n_levels - 1);
    down->push_back(levels.back());
    block_in = block_out;
  }
  mid = register_module("mid", VaeMidBlock(block_in));
  norm_out = register_module("norm_out", vae_normalize(block_in));
  conv_out = register_module("conv_out", ls::nn::Conv2d(block_in, 2 * config.z_channels, 3, 1, 1));
}

torch::Tensor VaeEncoderImpl::forward(const torch::Tensor& x) {
  auto h = conv_in(x);                     // [B, ch, H, W]
  for (auto& level : levels) h = level(h);  // [B, ch * ch_mult[-1], H/ds, W/ds]
  h = mid(h);
  return conv_out(torch::silu(norm_out(h)));  // [B, 2z, H/ds, W/ds]
}

VaeDecoderImpl::VaeDecoderImpl(const VaeConfig& config) {
  config.validate();
  const auto n_levels = static_cast<int64_t>(config.ch_mult.size());
  int64_t block_in = config.ch * config.ch_mult.back();
  conv_in = register_module("conv_in", ls::nn::Conv2d(config.z_channels, block_in, 3, 1, 1));
  mid = register_module("mid", VaeMidBlock(block_in));
  // Built lowest resolution first (each level's input is the previous level's output) but
  // registered by level index, as ldm's up.insert(0, ...) does.
  std::vector<VaeUpLevel> built(n_levels, nullptr);
  for (int64_t i = n_levels - 1; i >= 0; --i) {
    int64_t block_out = config.ch * config.ch_mult[i];
    built[i] = VaeUpLevel(block_in, block_out, config.num_res_blocks + 1, /*upsample=*/i != 0);
    block_in = block_out;
  }
  up = register_module("up", torch::nn::ModuleList());
  for (auto& level : built) {
    levels.push_back(level);
    up->push_back(level);
  }
  norm_out = register_module("norm_out", vae_normalize(block_in));
  conv_out = register_module("conv_out", ls::nn::Conv2d(block_in, config.out_channels, 3, 1, 1));
}

torch::Tensor VaeDecoderImpl::forward(const torch::Tensor& z) {
  auto h = mid(conv_in(z));  // [B, ch * ch_mult[-1], h, w]
  for (auto it = levels.rbegin(); it != levels.rend(); ++it) h = (*it)(h);  // up[L-1] first
  return conv_out(torch::silu(norm_out(h)));  // [B, out, h * ds, w * ds]
}

// ---------------------------------------------------------------------------------------------
// AutoencoderKL

AutoencoderKLImpl::AutoencoderKLImpl(const VaeConfig& config) : config_(config) {
  config_.validate();
  encoder = register_module("encoder", VaeEncoder(config_));
  decoder = register_module("decoder", VaeDecoder(config_));
  quant_conv = register_module("quant_conv",
                               ls::nn::Conv2d(2 * config_.z_channels, 2 * config_.embed_dim, 1));
  post_quant_conv = register_module("post_quant_conv",
                                    ls::nn::Conv2d(config_.embed_dim, config_.z_channels, 1));
}

torch::Tensor AutoencoderKLImpl::to_param_dtype(const torch::Tensor& x, int64_t channels,
                                                const char* what) const {
  LS_CHECK(x.dim() == 4 && x.size(1) == channels, "VAE ", what, ": expected [B, ", channels,
           ", H, W], got ", x.sizes());
  LS_CHECK(x.is_floating_point(), "VAE ", what, ": expected a floating-point tensor, got ",
           x.scalar_type());
  return x.to(quant_conv->weight.scalar_type());
}

VaeMoments AutoencoderKLImpl::encode(const torch::Tensor& image) {
  LS_CHECK(image.dim() == 4 && image.size(2) >= config_.downscale() && image.size(3) >= config_.downscale(),
           "VAE encode: image must be at least ", config_.downscale(), "x", config_.downscale(),
           " pixels, got ", image.sizes());
  auto x = to_param_dtype(image, config_.in_channels, "encode image");
  auto moments = quant_conv(encoder(x));  // [B, 2 embed_dim, h, w]
  auto parts = moments.chunk(2, 1);
  return {parts[0], parts[1].clamp(kLogvarMin, kLogvarMax)};
}

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& latent) {
  auto z = to_param_dtype(latent, config_.embed_dim, "decode latent");
  return decoder(post_quant_conv(z));  // [B, out, h * ds, w * ds]
}

torch::Tensor sample_latent(const VaeMoments& m, const torch::Tensor& eps) {
  return (m.mean + torch::exp(0.5 * m.logvar) * eps.to(m.mean.device(), m.mean.scalar_type())).to(torch::kFloat32);
}

void require_finite_latents(const torch::Tensor& latents, c10::ScalarType vae_dtype) {
  if (latents.isfinite().all().item<bool>()) return;
  LS_CHECK(vae_dtype != c10::kHalf, "the VAE gave NaN/inf latents in fp16 (SDXL's VAE overflows in fp16); encode in ",
           "fp32 or bf16 (--dtype fp32)");
  LS_FAIL("the VAE gave NaN/inf latents in ", c10::toString(vae_dtype), "; check the images and the checkpoint's VAE");
}

}  // namespace ls::models
