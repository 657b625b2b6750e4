// SGM UNetModel with SDXL's options (num_classes "sequential", no scale-shift norm, no resblock
// up/down, conv resampling); the module tree and its registration order are the checkpoint's.
// Initialisation: torch defaults for every layer. SGM's zero_module (out_layers.3, proj_out, out.2)
// is not applied, so a random model exercises every path; weights come from a checkpoint anyway.
#include "models/sdxl_unet.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "nn/functional.h"

namespace ls::models {

namespace {
constexpr double kOutNormEps = 1e-5;

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
}  // namespace

SdxlUnetConfig SdxlUnetConfig::tiny() {
  SdxlUnetConfig c;
  c.model_channels = 32;
  c.transformer_depth = {0, 1, 2};
  c.transformer_depth_middle = 2;
  c.num_head_channels = 8;
  c.context_dim = 64;  // tiny TE1 32 + tiny TE2 32
  c.adm_in_channels = 32 + 6 * 256;
  return c;
}

void SdxlUnetConfig::validate(const std::string& label) const {
  LS_CHECK(in_channels > 0 && out_channels > 0, label, ": in_channels and out_channels must be positive");
  LS_CHECK(model_channels > 0 && context_dim > 0 && adm_in_channels > 0 && num_head_channels > 0, label,
           ": model_channels, context_dim, adm_in_channels and num_head_channels must be positive");
  LS_CHECK(!channel_mult.empty(), label, ": channel_mult must list at least one level");
  LS_CHECK(num_res_blocks >= 1, label, ": num_res_blocks must be >= 1, got ", num_res_blocks);
  LS_CHECK(transformer_depth.size() == channel_mult.size(), label, ": transformer_depth has ",
           transformer_depth.size(), " entries but channel_mult has ", channel_mult.size(),
           "; give one per level");
  LS_CHECK(transformer_depth_middle >= 1, label, ": transformer_depth_middle must be >= 1, got ",
           transformer_depth_middle);
  for (size_t level = 0; level < channel_mult.size(); ++level) {
    int64_t width = model_channels * channel_mult[level];
    LS_CHECK(channel_mult[level] > 0 && width % kUnetNormGroups == 0, label, ": level ", level, " width ",
             width, " (model_channels x channel_mult) must be a positive multiple of 32 (GroupNorm groups)");
    LS_CHECK(transformer_depth[level] >= 0, label, ": transformer_depth[", level, "] must be >= 0");
    bool attends = transformer_depth[level] > 0 || level + 1 == channel_mult.size();  // last: middle block
    LS_CHECK(!attends || width % num_head_channels == 0, label, ": level ", level, " width ", width,
             " is not divisible by num_head_channels ", num_head_channels);
  }
}

void to_json(nlohmann::json& j, const SdxlUnetConfig& c) {
  j = nlohmann::json{{"in_channels", c.in_channels},
                     {"out_channels", c.out_channels},
                     {"model_channels", c.model_channels},
                     {"channel_mult", c.channel_mult},
                     {"num_res_blocks", c.num_res_blocks},
                     {"transformer_depth", c.transformer_depth},
                     {"transformer_depth_middle", c.transformer_depth_middle},
                     {"num_head_channels", c.num_head_channels},
                     {"context_dim", c.context_dim},
                     {"adm_in_channels", c.adm_in_channels},
                     {"use_linear_in_transformer", c.use_linear_in_transformer}};
}

void from_json(const nlohmann::json& j, SdxlUnetConfig& c) {
  LS_CHECK(j.is_object(), "unet config must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "in_channels") v.get_to(c.in_channels);
    else if (key == "out_channels") v.get_to(c.out_channels);
    else if (key == "model_channels") v.get_to(c.model_channels);
    else if (key == "channel_mult") v.get_to(c.channel_mult);
    else if (key == "num_res_blocks") v.get_to(c.num_res_blocks);
    else if (key == "transformer_depth") v.get_to(c.transformer_depth);
    else if (key == "transformer_depth_middle") v.get_to(c.transformer_depth_middle);
    else if (key == "num_head_channels") v.get_to(c.num_head_channels);
    else if (key == "context_dim") v.get_to(c.context_dim);
    else if (key == "adm_in_channels") v.get_to(c.adm_in_channels);
    else if (key == "use_linear_in_transformer") v.get_to(c.use_linear_in_transformer);
    else LS_FAIL("unet config: unknown field '", key, "'; see SdxlUnetConfig in docs/models.md for the fields");
  }
}

// ---------------------------------------------------------------------------------------------
SdxlUnetImpl::SdxlUnetImpl(const SdxlUnetConfig& config) : config_(config) {
  config_.validate();
  const int64_t mc = config_.model_channels, emb = 4 * mc;
  auto time_embed = add_sequential(*this, "time_embed");
  time_in_ = time_embed->register_module("0", nn::Linear(mc, emb));
  time_out_ = time_embed->register_module("2", nn::Linear(emb, emb));
  auto label_emb = add_sequential(*add_sequential(*this, "label_emb"), "0");
  label_in_ = label_emb->register_module("0", nn::Linear(config_.adm_in_channels, emb));
  label_out_ = label_emb->register_module("2", nn::Linear(emb, emb));

  std::vector<int64_t> skip_channels;
  build_input_blocks(skip_channels);

  const int64_t top = mc * config_.channel_mult.back();
  middle_block_ = register_module("middle_block", TimestepSequential());
  middle_block_->append(ResBlock(top, emb, top));
  middle_block_->append(SpatialTransformer(top, top / config_.num_head_channels, config_.num_head_channels,
                                           config_.transformer_depth_middle, config_.context_dim,
                                           config_.use_linear_in_transformer));
  middle_block_->append(ResBlock(top, emb, top));

  build_output_blocks(skip_channels);
  auto out = add_sequential(*this, "out");
  out_norm_ = out->register_module("0", nn::GroupNorm(kUnetNormGroups, mc, kOutNormEps, true));
  out_conv_ = out->register_module("2", nn::Conv2d(mc, config_.out_channels, 3, 1, 1));
}

void SdxlUnetImpl::build_input_blocks(std::vector<int64_t>& skip_channels) {
  const auto& c = config_;
  const int64_t emb = 4 * c.model_channels;
  auto list = register_module("input_blocks", torch::nn::ModuleList());
  auto add = [&](TimestepSequential block, int64_t channels) {
    list->push_back(block);
    input_blocks_.push_back(block);
    skip_channels.push_back(channels);
  };
  TimestepSequential stem;
  stem->append(nn::Conv2d(c.in_channels, c.model_channels, 3, 1, 1));
  add(stem, c.model_channels);
  int64_t ch = c.model_channels;
  for (size_t level = 0; level < c.channel_mult.size(); ++level) {
    const int64_t width = c.model_channels * c.channel_mult[level];
    for (int64_t i = 0; i < c.num_res_blocks; ++i) {
      TimestepSequential block;
      block->append(ResBlock(ch, emb, width));
      ch = width;
      if (c.transformer_depth[level] > 0) {
        block->append(SpatialTransformer(ch, ch / c.num_head_channels, c.num_head_channels,
                                         c.transformer_depth[level], c.context_dim, c.use_linear_in_transformer));
      }
      add(block, ch);
    }
    if (level + 1 < c.channel_mult.size()) {
      TimestepSequential down;
      down->append(Downsample(ch, ch));
      add(down, ch);
    }
  }
}

void SdxlUnetImpl::build_output_blocks(std::vector<int64_t>& skip_channels) {
  const auto& c = config_;
  const int64_t emb = 4 * c.model_channels;
  auto list = register_module("output_blocks", torch::nn::ModuleList());
  int64_t ch = c.model_channels * c.channel_mult.back();
  for (size_t level = c.channel_mult.size(); level-- > 0;) {
    const int64_t width = c.model_channels * c.channel_mult[level];
    for (int64_t i = 0; i <= c.num_res_blocks; ++i) {
      const int64_t skip = skip_channels.back();
      skip_channels.pop_back();
      TimestepSequential block;
      block->append(ResBlock(ch + skip, emb, width));
      ch = width;
      if (c.transformer_depth[level] > 0) {
        block->append(SpatialTransformer(ch, ch / c.num_head_channels, c.num_head_channels,
                                         c.transformer_depth[level], c.context_dim, c.use_linear_in_transformer));
      }
      if (level > 0 && i == c.num_res_blocks) block->append(Upsample(ch, ch));
      list->push_back(block);
      output_blocks_.push_back(block);
    }
  }
}

void SdxlUnetImpl::check_inputs(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context,
                                const torch::Tensor& y) const {
  const auto& c = config_;
  LS_CHECK(x.defined() && t.defined() && context.defined() && y.defined(),
           "SdxlUnet: x, t, context and y must all be given");
  LS_CHECK(x.dim() == 4 && x.size(1) == c.in_channels, "SdxlUnet: x must be [B, ", c.in_channels,
           ", H, W], got ", shape_str(x));
  const int64_t b = x.size(0), factor = int64_t(1) << (c.channel_mult.size() - 1);
  LS_CHECK(x.size(2) % factor == 0 && x.size(3) % factor == 0, "SdxlUnet: latent height and width must be",
           " multiples of ", factor, " (image sides multiples of ", 8 * factor, "), got ", shape_str(x));
  LS_CHECK(t.dim() <= 1 && (t.numel() == b || t.numel() == 1), "SdxlUnet: t must hold one timestep or ",
           b, " (one per sample), got ", shape_str(t));
  LS_CHECK(context.dim() == 3 && context.size(0) == b && context.size(2) == c.context_dim,
           "SdxlUnet: context must be [", b, ", N, ", c.context_dim, "], got ", shape_str(context));
  LS_CHECK(y.dim() == 2 && y.size(0) == b && y.size(1) == c.adm_in_channels, "SdxlUnet: y must be [", b,
           ", ", c.adm_in_channels, "], got ", shape_str(y));
}

torch::Tensor SdxlUnetImpl::embed(const torch::Tensor& t, const torch::Tensor& y, int64_t batch) {
  const auto dtype = time_in_->weight.scalar_type();
  auto steps = t.reshape({-1}).to(time_in_->weight.device()).expand({batch});
  // SGM builds the sinusoid in float32, whatever the model's dtype.
  auto t_emb = nn::timestep_embedding(steps, config_.model_channels).to(dtype);  // [B, mc]
  auto emb = time_out_(torch::silu(time_in_(t_emb)));                            // [B, 4 mc]
  return emb + label_out_(torch::silu(label_in_(y.to(dtype))));
}

torch::Tensor SdxlUnetImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& context,
                                    const torch::Tensor& y) {
  check_inputs(x, t, context, y);
  const auto dtype = time_in_->weight.scalar_type();
  auto emb = embed(t, y, x.size(0));  // [B, 4 mc]
  tap("emb", emb);
  auto ctx = context.to(dtype);       // [B, N, context_dim]
  auto h = x.to(dtype);               // [B, in, H, W]
  std::vector<torch::Tensor> skips;
  skips.reserve(input_blocks_.size());
  for (size_t i = 0; i < input_blocks_.size(); ++i) {
    h = input_blocks_[i](h, emb, ctx);
    tap("input_blocks." + std::to_string(i), h);
    skips.push_back(h);
  }
  h = middle_block_(h, emb, ctx);
  tap("middle_block", h);
  for (size_t i = 0; i < output_blocks_.size(); ++i) {
    h = torch::cat({h, skips.back()}, 1);  // [B, C + C_skip, H, W]
    skips.pop_back();                     // frees the skip once nothing else holds it
    h = output_blocks_[i](h, emb, ctx);
    tap("output_blocks." + std::to_string(i), h);
  }
  h = out_conv_(torch::silu(out_norm_(h)));  // [B, out, H, W]
  tap("out", h);
  return h.to(x.scalar_type());
}

void SdxlUnetImpl::set_gradient_checkpointing(bool enabled) {
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* r = m->as<ResBlockImpl>()) r->gradient_checkpointing = enabled;
    if (auto* b = m->as<BasicTransformerBlockImpl>()) b->gradient_checkpointing = enabled;
  }
}

}  // namespace ls::models
