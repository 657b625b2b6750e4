// The VAE's prefix table; see key_map_diffusers_vae.h.
#include "models/key_map_diffusers_vae.h"

#include "core/error.h"

namespace ls::models {

namespace {

struct VaeNamePair {
  const char* diffusers;
  const char* ldm;
  TensorTransform transform;
  bool legacy;
};

constexpr TensorTransform kVaeSame = TensorTransform::kNone;
constexpr TensorTransform kVaeConv = TensorTransform::kConv1x1;

// Named alike on both sides, or renamed once.
constexpr VaeNamePair kVaeTopNames[] = {
    {"encoder.conv_in.", "encoder.conv_in.", kVaeSame, false},
    {"encoder.conv_out.", "encoder.conv_out.", kVaeSame, false},
    {"encoder.conv_norm_out.", "encoder.norm_out.", kVaeSame, false},
    {"decoder.conv_in.", "decoder.conv_in.", kVaeSame, false},
    {"decoder.conv_out.", "decoder.conv_out.", kVaeSame, false},
    {"decoder.conv_norm_out.", "decoder.norm_out.", kVaeSame, false},
    {"quant_conv.", "quant_conv.", kVaeSame, false},
    {"post_quant_conv.", "post_quant_conv.", kVaeSame, false},
};

// ResnetBlock2D <-> ldm ResnetBlock.
constexpr VaeNamePair kVaeResnetNames[] = {
    {"norm1.", "norm1.", kVaeSame, false}, {"conv1.", "conv1.", kVaeSame, false},
    {"norm2.", "norm2.", kVaeSame, false}, {"conv2.", "conv2.", kVaeSame, false},
    {"conv_shortcut.", "nin_shortcut.", kVaeSame, false},
};

// Attention (diffusers Linear layers) <-> ldm AttnBlock (1x1 convs); whole names, since only the
// weights change shape.
constexpr VaeNamePair kVaeAttentionNames[] = {
    {"group_norm.", "norm.", kVaeSame, false},
    {"to_q.weight", "q.weight", kVaeConv, false},
    {"to_q.bias", "q.bias", kVaeSame, false},
    {"to_k.weight", "k.weight", kVaeConv, false},
    {"to_k.bias", "k.bias", kVaeSame, false},
    {"to_v.weight", "v.weight", kVaeConv, false},
    {"to_v.bias", "v.bias", kVaeSame, false},
    {"to_out.0.weight", "proj_out.weight", kVaeConv, false},
    {"to_out.0.bias", "proj_out.bias", kVaeSame, false},
    {"query.weight", "q.weight", kVaeConv, true},
    {"query.bias", "q.bias", kVaeSame, true},
    {"key.weight", "k.weight", kVaeConv, true},
    {"key.bias", "k.bias", kVaeSame, true},
    {"value.weight", "v.weight", kVaeConv, true},
    {"value.bias", "v.bias", kVaeSame, true},
    {"proj_attn.weight", "proj_out.weight", kVaeConv, true},
    {"proj_attn.bias", "proj_out.bias", kVaeSame, true},
};

template <size_t N>
void vae_add(std::vector<KeyRule>& rules, const VaeNamePair (&names)[N], const std::string& diffusers,
             const std::string& ldm) {
  for (const auto& n : names) rules.push_back({diffusers + n.diffusers, ldm + n.ldm, n.transform, n.legacy});
}

void vae_add_mid(std::vector<KeyRule>& rules, const std::string& side) {
  vae_add(rules, kVaeResnetNames, side + "mid_block.resnets.0.", side + "mid.block_1.");
  vae_add(rules, kVaeAttentionNames, side + "mid_block.attentions.0.", side + "mid.attn_1.");
  vae_add(rules, kVaeResnetNames, side + "mid_block.resnets.1.", side + "mid.block_2.");
}

}  // namespace

KeyMap diffusers_vae_map(const VaeConfig& c) {
  std::vector<KeyRule> rules;
  vae_add(rules, kVaeTopNames, "", "");
  const auto levels = static_cast<int64_t>(c.ch_mult.size());
  for (int64_t level = 0; level < levels; ++level) {
    for (int64_t j = 0; j < c.num_res_blocks; ++j)
      vae_add(rules, kVaeResnetNames, str_cat("encoder.down_blocks.", level, ".resnets.", j, "."),
              str_cat("encoder.down.", level, ".block.", j, "."));
    if (level + 1 < levels)
      rules.push_back({str_cat("encoder.down_blocks.", level, ".downsamplers.0.conv."),
                       str_cat("encoder.down.", level, ".downsample.conv.")});
  }
  for (int64_t i = 0; i < levels; ++i) {  // decoder.up_blocks run from the deepest level up
    const int64_t level = levels - 1 - i;
    for (int64_t j = 0; j <= c.num_res_blocks; ++j)
      vae_add(rules, kVaeResnetNames, str_cat("decoder.up_blocks.", i, ".resnets.", j, "."),
              str_cat("decoder.up.", level, ".block.", j, "."));
    if (level > 0)
      rules.push_back({str_cat("decoder.up_blocks.", i, ".upsamplers.0.conv."), str_cat("decoder.up.", level, ".upsample.conv.")});
  }
  vae_add_mid(rules, "encoder.");
  vae_add_mid(rules, "decoder.");
  return KeyMap(std::move(rules));
}

}  // namespace ls::models
