// The UNet's prefix table; see key_map_diffusers_unet.h. The constant tables say how names inside
// a block are spelt; diffusers_unet_map() only enumerates the blocks of the architecture, in
// SGM's numbering (input block 0 = conv_in, then per level num_res_blocks blocks and a
// downsampler; output blocks per level num_res_blocks + 1, the upsampler in the last one).
#include "models/key_map_diffusers_unet.h"

#include "core/error.h"

namespace ls::models {

namespace {

struct UnetNamePair {
  const char* diffusers;
  const char* sgm;
};

// Outside the blocks.
constexpr UnetNamePair kUnetTopNames[] = {
    {"time_embedding.linear_1.", "time_embed.0."}, {"time_embedding.linear_2.", "time_embed.2."},
    {"add_embedding.linear_1.", "label_emb.0.0."}, {"add_embedding.linear_2.", "label_emb.0.2."},
    {"conv_in.", "input_blocks.0.0."},             {"conv_norm_out.", "out.0."},
    {"conv_out.", "out.2."},
};

// ResnetBlock2D <-> SGM ResBlock.
constexpr UnetNamePair kUnetResnetNames[] = {
    {"norm1.", "in_layers.0."},  {"conv1.", "in_layers.2."},  {"time_emb_proj.", "emb_layers.1."},
    {"norm2.", "out_layers.0."}, {"conv2.", "out_layers.3."}, {"conv_shortcut.", "skip_connection."},
};

// Transformer2DModel and SpatialTransformer spell their insides alike (norm, proj_in,
// transformer_blocks.N.attn1.to_q, ff.net.0.proj, proj_out...): whole-block prefixes.
constexpr const char* kUnetDownsampler = "downsamplers.0.conv.";  // -> "<block>.0.op."
constexpr const char* kUnetUpsampler = "upsamplers.0.conv.";      // -> "<block>.<last>.conv."

void unet_add_resnet(std::vector<KeyRule>& rules, const std::string& diffusers, const std::string& sgm) {
  for (const auto& n : kUnetResnetNames) rules.push_back({diffusers + n.diffusers, sgm + n.sgm});
}

}  // namespace

KeyMap diffusers_unet_map(const SdxlUnetConfig& c) {
  std::vector<KeyRule> rules;
  for (const auto& n : kUnetTopNames) rules.push_back({n.diffusers, n.sgm});
  const auto levels = static_cast<int64_t>(c.channel_mult.size());
  const int64_t per_level = c.num_res_blocks + 1;  // SGM blocks per level: resnets + the resampler
  for (int64_t level = 0; level < levels; ++level) {
    const std::string down = str_cat("down_blocks.", level, ".");
    for (int64_t j = 0; j < c.num_res_blocks; ++j) {
      const std::string block = str_cat("input_blocks.", 1 + level * per_level + j, ".");
      unet_add_resnet(rules, str_cat(down, "resnets.", j, "."), block + "0.");
      if (c.transformer_depth[level] > 0) rules.push_back({str_cat(down, "attentions.", j, "."), block + "1."});
    }
    if (level + 1 < levels)
      rules.push_back({down + kUnetDownsampler, str_cat("input_blocks.", (level + 1) * per_level, ".0.op.")});
  }
  unet_add_resnet(rules, "mid_block.resnets.0.", "middle_block.0.");
  rules.push_back({"mid_block.attentions.0.", "middle_block.1."});
  unet_add_resnet(rules, "mid_block.resnets.1.", "middle_block.2.");
  for (int64_t i = 0; i < levels; ++i) {  // up_blocks run from the deepest level up
    const int64_t level = levels - 1 - i;
    const bool attends = c.transformer_depth[level] > 0;
    const std::string up = str_cat("up_blocks.", i, ".");
    for (int64_t j = 0; j < per_level; ++j) {
      const std::string block = str_cat("output_blocks.", i * per_level + j, ".");
      unet_add_resnet(rules, str_cat(up, "resnets.", j, "."), block + "0.");
      if (attends) rules.push_back({str_cat(up, "attentions.", j, "."), block + "1."});
    }
    if (level > 0)
      rules.push_back({up + kUnetUpsampler, str_cat("output_blocks.", i * per_level + c.num_res_blocks, ".",
                                                    attends ? 2 : 1, ".conv.")});
  }
  return KeyMap(std::move(rules));
}

}  // namespace ls::models
