// diffusers / transformers config.json <-> lorastudio configs; see diffusers_config.h.
#include "models/diffusers_config.h"

#include "core/atomic_file.h"
#include "core/error.h"

namespace ls::models {

namespace {

using nlohmann::json;

// The version whose save_pretrained output these files follow.
constexpr const char* kDiffusersVersion = "0.42.1";
constexpr const char* kTransformersVersion = "5.23.0";

template <typename T>
T dcfg_get(const json& j, const char* key, const T& fallback, const std::string& label) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    LS_FAIL(label, ": '", key, "' has the wrong type (", j.at(key).dump(), ")");
  }
}

// A setting lorastudio's network does not have: only its SDXL value is accepted.
template <typename T>
void dcfg_require(const json& j, const char* key, const T& sdxl, const std::string& label) {
  if (!j.contains(key) || j.at(key).is_null()) return;
  const T value = dcfg_get<T>(j, key, sdxl, label);
  LS_CHECK(value == sdxl, label, ": ", key, " = ", j.at(key).dump(), " is not SDXL's (", json(sdxl).dump(),
           "); lorastudio builds SDXL-architecture networks only");
}

// int or per-level list -> per-level list
std::vector<int64_t> dcfg_per_level(const json& j, const char* key, size_t levels, int64_t fallback,
                                    const std::string& label) {
  if (!j.contains(key) || j.at(key).is_null()) return std::vector<int64_t>(levels, fallback);
  const json& v = j.at(key);
  if (v.is_number_integer()) return std::vector<int64_t>(levels, v.get<int64_t>());
  auto out = dcfg_get<std::vector<int64_t>>(j, key, {}, label);
  LS_CHECK(out.size() == levels, label, ": ", key, " has ", out.size(), " entries for ", levels, " levels");
  return out;
}

}  // namespace

json read_json_file(const std::filesystem::path& path) {
  LS_CHECK(std::filesystem::is_regular_file(path), path.string(), ": not found; the diffusers folder is incomplete");
  try {
    return json::parse(core::read_file(path.string()));
  } catch (const json::exception& e) {
    LS_FAIL(path.string(), ": not valid JSON (", e.what(), ")");
  }
}

SdxlUnetConfig unet_config_from_diffusers(const json& j, const std::string& label) {
  LS_CHECK(j.is_object(), label, ": expected a JSON object");
  const auto cls = dcfg_get<std::string>(j, "_class_name", "UNet2DConditionModel", label);
  LS_CHECK(cls == "UNet2DConditionModel", label, ": a ", cls, ", not a UNet2DConditionModel");
  SdxlUnetConfig c;
  const auto widths = dcfg_get<std::vector<int64_t>>(j, "block_out_channels", {320, 640, 1280}, label);
  LS_CHECK(!widths.empty() && widths[0] > 0, label, ": block_out_channels must list positive widths");
  c.model_channels = widths[0];
  c.channel_mult.clear();
  for (int64_t w : widths) {
    LS_CHECK(w % widths[0] == 0, label, ": block_out_channels ", json(widths).dump(),
             " are not multiples of the first; SGM's UNet needs whole channel multipliers");
    c.channel_mult.push_back(w / widths[0]);
  }
  const size_t levels = widths.size();
  c.in_channels = dcfg_get<int64_t>(j, "in_channels", 4, label);
  c.out_channels = dcfg_get<int64_t>(j, "out_channels", 4, label);
  c.num_res_blocks = dcfg_get<int64_t>(j, "layers_per_block", 2, label);
  c.context_dim = dcfg_get<int64_t>(j, "cross_attention_dim", 2048, label);
  c.adm_in_channels = dcfg_get<int64_t>(j, "projection_class_embeddings_input_dim", 2816, label);
  c.use_linear_in_transformer = dcfg_get<bool>(j, "use_linear_projection", false, label);
  const auto down = dcfg_get<std::vector<std::string>>(j, "down_block_types", {}, label);
  const auto up = dcfg_get<std::vector<std::string>>(j, "up_block_types", {}, label);
  LS_CHECK(down.size() == levels && up.size() == levels, label, ": down_block_types and up_block_types need ", levels,
           " entries (one per block_out_channels)");
  const auto depth = dcfg_per_level(j, "transformer_layers_per_block", levels, 1, label);
  // diffusers calls the head count attention_head_dim unless num_attention_heads is given.
  const char* heads_key = j.contains("num_attention_heads") && !j.at("num_attention_heads").is_null()
                              ? "num_attention_heads" : "attention_head_dim";
  const auto heads = dcfg_per_level(j, heads_key, levels, 8, label);
  c.transformer_depth.assign(levels, 0);
  c.num_head_channels = 0;
  for (size_t level = 0; level < levels; ++level) {
    const bool cross = down[level] == "CrossAttnDownBlock2D";
    LS_CHECK(cross || down[level] == "DownBlock2D", label, ": down block type '", down[level],
             "' is not SDXL's (DownBlock2D, CrossAttnDownBlock2D)");
    const std::string& mirror = up[levels - 1 - level];
    LS_CHECK(mirror == (cross ? "CrossAttnUpBlock2D" : "UpBlock2D"), label, ": up_block_types must mirror ",
             "down_block_types (level ", level, " is ", down[level], ", its up block ", mirror, ")");
    const bool last = level + 1 == levels;  // the middle block attends with the deepest level's heads
    if (!cross && !last) continue;
    LS_CHECK(heads[level] > 0 && widths[level] % heads[level] == 0, label, ": ", heads_key, " ", heads[level],
             " does not divide level ", level, "'s width ", widths[level]);
    const int64_t head_dim = widths[level] / heads[level];
    LS_CHECK(c.num_head_channels == 0 || c.num_head_channels == head_dim, label, ": the head width differs between ",
             "levels (", c.num_head_channels, " and ", head_dim, "); SGM's UNet uses one num_head_channels");
    c.num_head_channels = head_dim;
    if (cross) c.transformer_depth[level] = depth[level];
  }
  c.transformer_depth_middle = depth.back();
  dcfg_require<std::string>(j, "mid_block_type", "UNetMidBlock2DCrossAttn", label);
  dcfg_require<std::string>(j, "addition_embed_type", "text_time", label);
  dcfg_require<int64_t>(j, "addition_time_embed_dim", 256, label);
  dcfg_require<std::string>(j, "act_fn", "silu", label);
  dcfg_require<int64_t>(j, "norm_num_groups", 32, label);
  dcfg_require<bool>(j, "flip_sin_to_cos", true, label);
  dcfg_require<int64_t>(j, "freq_shift", 0, label);
  dcfg_require<std::string>(j, "time_embedding_type", "positional", label);
  dcfg_require<std::string>(j, "resnet_time_scale_shift", "default", label);
  dcfg_require<int64_t>(j, "conv_in_kernel", 3, label);
  dcfg_require<int64_t>(j, "conv_out_kernel", 3, label);
  LS_CHECK(!j.contains("class_embed_type") || j.at("class_embed_type").is_null(), label, ": class_embed_type ",
           j.value("class_embed_type", json()).dump(), " is not SDXL's (null)");
  LS_CHECK(!j.contains("addition_embed_type") || !j.at("addition_embed_type").is_null(), label,
           ": addition_embed_type is null: an SD 1.x/2.x UNet, not SDXL's (text_time)");
  try {
    c.validate(label);
  } catch (const ls::Error& e) {
    LS_FAIL(e.what());
  }
  return c;
}

VaeConfig vae_config_from_diffusers(const json& j, const std::string& label) {
  LS_CHECK(j.is_object(), label, ": expected a JSON object");
  const auto cls = dcfg_get<std::string>(j, "_class_name", "AutoencoderKL", label);
  LS_CHECK(cls == "AutoencoderKL", label, ": a ", cls, ", not an AutoencoderKL; SDXL's VAE is an AutoencoderKL");
  VaeConfig c;
  const auto widths = dcfg_get<std::vector<int64_t>>(j, "block_out_channels", {128, 256, 512, 512}, label);
  LS_CHECK(!widths.empty() && widths[0] > 0, label, ": block_out_channels must list positive widths");
  c.ch = widths[0];
  c.ch_mult.clear();
  for (int64_t w : widths) {
    LS_CHECK(w % widths[0] == 0, label, ": block_out_channels are not multiples of the first");
    c.ch_mult.push_back(w / widths[0]);
  }
  c.in_channels = dcfg_get<int64_t>(j, "in_channels", 3, label);
  c.out_channels = dcfg_get<int64_t>(j, "out_channels", 3, label);
  c.num_res_blocks = dcfg_get<int64_t>(j, "layers_per_block", 1, label);
  c.z_channels = dcfg_get<int64_t>(j, "latent_channels", 4, label);
  c.embed_dim = c.z_channels;
  c.scale_factor = dcfg_get<double>(j, "scaling_factor", 0.13025, label);
  for (const auto& t : dcfg_get<std::vector<std::string>>(j, "down_block_types", {}, label))
    LS_CHECK(t == "DownEncoderBlock2D", label, ": down block type '", t, "' is not an AutoencoderKL's DownEncoderBlock2D");
  for (const auto& t : dcfg_get<std::vector<std::string>>(j, "up_block_types", {}, label))
    LS_CHECK(t == "UpDecoderBlock2D", label, ": up block type '", t, "' is not an AutoencoderKL's UpDecoderBlock2D");
  dcfg_require<std::string>(j, "act_fn", "silu", label);
  dcfg_require<int64_t>(j, "norm_num_groups", 32, label);
  dcfg_require<bool>(j, "use_quant_conv", true, label);
  dcfg_require<bool>(j, "use_post_quant_conv", true, label);
  dcfg_require<bool>(j, "mid_block_add_attention", true, label);
  try {
    c.validate();
  } catch (const ls::Error& e) {
    LS_FAIL(label, ": ", e.what());
  }
  return c;
}

ClipTextConfig clip_config_from_transformers(const json& j, bool with_projection, const std::string& label) {
  LS_CHECK(j.is_object(), label, ": expected a JSON object");
  ClipTextConfig c = with_projection ? ClipTextConfig::sdxl_te2() : ClipTextConfig::sdxl_te1();
  c.vocab_size = dcfg_get<int64_t>(j, "vocab_size", c.vocab_size, label);
  c.max_positions = dcfg_get<int64_t>(j, "max_position_embeddings", c.max_positions, label);
  c.width = dcfg_get<int64_t>(j, "hidden_size", c.width, label);
  c.layers = dcfg_get<int64_t>(j, "num_hidden_layers", c.layers, label);
  c.heads = dcfg_get<int64_t>(j, "num_attention_heads", c.heads, label);
  c.mlp_width = dcfg_get<int64_t>(j, "intermediate_size", c.mlp_width, label);
  c.activation = dcfg_get<std::string>(j, "hidden_act", c.activation, label);
  c.layer_norm_eps = dcfg_get<double>(j, "layer_norm_eps", c.layer_norm_eps, label);
  c.projection_dim = with_projection ? dcfg_get<int64_t>(j, "projection_dim", c.projection_dim, label) : 0;
  try {
    c.validate();
  } catch (const ls::Error& e) {
    LS_FAIL(label, ": ", e.what());
  }
  return c;
}

json unet_config_to_diffusers(const SdxlUnetConfig& c) {
  std::vector<int64_t> widths, heads, depth;
  std::vector<std::string> down, up;
  for (size_t level = 0; level < c.channel_mult.size(); ++level) {
    widths.push_back(c.model_channels * c.channel_mult[level]);
    heads.push_back(widths.back() / c.num_head_channels);
    const bool cross = c.transformer_depth[level] > 0;
    down.push_back(cross ? "CrossAttnDownBlock2D" : "DownBlock2D");
    up.insert(up.begin(), cross ? "CrossAttnUpBlock2D" : "UpBlock2D");
    depth.push_back(cross ? c.transformer_depth[level] : 1);
  }
  // diffusers' middle block takes the deepest level's depth.
  LS_CHECK(c.transformer_depth.back() == c.transformer_depth_middle, "diffusers UNet config: transformer_depth_middle ",
           c.transformer_depth_middle, " differs from the deepest level's ", c.transformer_depth.back(),
           "; diffusers cannot express that");
  return json{{"_class_name", "UNet2DConditionModel"}, {"_diffusers_version", kDiffusersVersion},
              {"act_fn", "silu"}, {"addition_embed_type", "text_time"}, {"addition_time_embed_dim", 256},
              {"attention_head_dim", heads}, {"block_out_channels", widths}, {"center_input_sample", false},
              {"cross_attention_dim", c.context_dim}, {"down_block_types", down}, {"flip_sin_to_cos", true},
              {"freq_shift", 0}, {"in_channels", c.in_channels}, {"layers_per_block", c.num_res_blocks},
              {"mid_block_type", "UNetMidBlock2DCrossAttn"}, {"norm_eps", 1e-5}, {"norm_num_groups", 32},
              {"out_channels", c.out_channels}, {"projection_class_embeddings_input_dim", c.adm_in_channels},
              {"sample_size", 128}, {"transformer_layers_per_block", depth}, {"up_block_types", up},
              {"use_linear_projection", c.use_linear_in_transformer}};
}

json vae_config_to_diffusers(const VaeConfig& c) {
  std::vector<int64_t> widths;
  for (int64_t m : c.ch_mult) widths.push_back(c.ch * m);
  LS_CHECK(c.embed_dim == c.z_channels, "diffusers VAE config: embed_dim ", c.embed_dim, " differs from z_channels ",
           c.z_channels, "; diffusers' AutoencoderKL has one latent_channels");
  return json{{"_class_name", "AutoencoderKL"}, {"_diffusers_version", kDiffusersVersion}, {"act_fn", "silu"},
              {"block_out_channels", widths},
              {"down_block_types", std::vector<std::string>(widths.size(), "DownEncoderBlock2D")},
              {"force_upcast", true}, {"in_channels", c.in_channels}, {"latent_channels", c.z_channels},
              {"layers_per_block", c.num_res_blocks}, {"norm_num_groups", 32}, {"out_channels", c.out_channels},
              {"sample_size", 1024}, {"scaling_factor", c.scale_factor},
              {"up_block_types", std::vector<std::string>(widths.size(), "UpDecoderBlock2D")}};
}

json clip_config_to_transformers(const ClipTextConfig& c, bool with_projection) {
  return json{{"architectures", {with_projection ? "CLIPTextModelWithProjection" : "CLIPTextModel"}},
              {"bos_token_id", 0}, {"eos_token_id", 2}, {"pad_token_id", 1}, {"hidden_act", c.activation},
              {"hidden_size", c.width}, {"intermediate_size", c.mlp_width}, {"layer_norm_eps", c.layer_norm_eps},
              {"max_position_embeddings", c.max_positions}, {"model_type", "clip_text_model"},
              {"num_attention_heads", c.heads}, {"num_hidden_layers", c.layers},
              {"projection_dim", with_projection ? c.projection_dim : c.width}, {"torch_dtype", "float32"},
              {"transformers_version", kTransformersVersion}, {"vocab_size", c.vocab_size}};
}

}  // namespace ls::models
