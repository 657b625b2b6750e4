#include "caption/florence2_config.h"

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace ls::caption {

namespace {

using nlohmann::json;

template <typename T>
void f2c_read(const json& object, const char* key, T& out, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    LS_FAIL(where, ": \"", key, "\" has the wrong type (", it->dump(), "); the file is not a Florence-2 config.json");
  }
}

void f2c_parse_vision(const json& v, Florence2VisionConfig& c, bool microsoft, const std::string& where) {
  if (microsoft) {
    f2c_read(v, "dim_embed", c.embed_dim, where);
    if (auto it = v.find("visual_temporal_embedding"); it != v.end() && it->is_object()) {
      std::string type = it->value("type", std::string("COSINE"));
      LS_CHECK(type == "COSINE", where, ": visual_temporal_embedding type \"", type,
               "\" is not supported (Florence-2 uses COSINE)");
      f2c_read(*it, "max_temporal_embeddings", c.max_temporal_embeddings, where);
    }
    if (auto it = v.find("image_pos_embed"); it != v.end() && it->is_object()) {
      std::string type = it->value("type", std::string("learned_abs_2d"));
      LS_CHECK(type == "learned_abs_2d", where, ": image_pos_embed type \"", type,
               "\" is not supported (Florence-2 uses learned_abs_2d)");
      f2c_read(*it, "max_pos_embeddings", c.max_position_embeddings, where);
    }
    if (auto it = v.find("image_feature_source"); it != v.end() && it->is_array()) {
      std::vector<std::string> sources = it->get<std::vector<std::string>>();
      LS_CHECK(sources == std::vector<std::string>({"spatial_avg_pool", "temporal_avg_pool"}), where,
               ": image_feature_source ", it->dump(),
               " is not supported (Florence-2 uses [\"spatial_avg_pool\", \"temporal_avg_pool\"])");
    }
  } else {
    f2c_read(v, "embed_dim", c.embed_dim, where);
    f2c_read(v, "max_temporal_embeddings", c.max_temporal_embeddings, where);
    f2c_read(v, "max_position_embeddings", c.max_position_embeddings, where);
    std::string act = v.value("activation_function", std::string("gelu"));
    LS_CHECK(act == "gelu", where, ": vision activation_function \"", act, "\" is not supported (Florence-2 uses gelu)");
    int64_t in_channels = v.value("in_channels", int64_t{3});
    LS_CHECK(in_channels == 3, where, ": vision in_channels ", in_channels, " is not supported (RGB images: 3)");
  }
  f2c_read(v, "depths", c.depths, where);
  f2c_read(v, "patch_size", c.patch_size, where);
  f2c_read(v, "patch_stride", c.patch_stride, where);
  f2c_read(v, "patch_padding", c.patch_padding, where);
  f2c_read(v, "patch_prenorm", c.patch_prenorm, where);
  f2c_read(v, "num_heads", c.num_heads, where);
  f2c_read(v, "num_groups", c.num_groups, where);
  f2c_read(v, "window_size", c.window_size, where);
  f2c_read(v, "mlp_ratio", c.mlp_ratio, where);
  f2c_read(v, "qkv_bias", c.qkv_bias, where);
  f2c_read(v, "projection_dim", c.projection_dim, where);

  size_t n = c.embed_dim.size();
  LS_CHECK(n > 0 && c.depths.size() == n && c.patch_size.size() == n && c.patch_stride.size() == n &&
               c.patch_padding.size() == n && c.patch_prenorm.size() == n && c.num_heads.size() == n &&
               c.num_groups.size() == n,
           where, ": the vision config's per-stage lists (depths, patch_*, embed widths, num_heads, num_groups) "
           "must all have one entry per stage");
  for (size_t i = 0; i < n; ++i) {
    LS_CHECK(c.embed_dim[i] > 0 && c.num_heads[i] > 0 && c.num_groups[i] > 0 && c.embed_dim[i] % c.num_heads[i] == 0 &&
                 c.embed_dim[i] % c.num_groups[i] == 0 && c.patch_size[i] > 0 && c.patch_stride[i] > 0 &&
                 c.depths[i] >= 0,
             where, ": vision stage ", i, " has width ", c.embed_dim[i], " with ", c.num_heads[i], " heads and ",
             c.num_groups[i], " groups; widths must be positive multiples of both");
  }
  LS_CHECK(c.window_size > 0 && c.projection_dim > 0 && c.max_position_embeddings > 0 &&
               c.max_temporal_embeddings > 0,
           where, ": window_size, projection_dim and the embedding table sizes must be positive");
}

void f2c_parse_text(const json& t, Florence2TextConfig& c, const std::string& where) {
  f2c_read(t, "vocab_size", c.vocab_size, where);
  f2c_read(t, "d_model", c.d_model, where);
  f2c_read(t, "encoder_layers", c.encoder_layers, where);
  f2c_read(t, "decoder_layers", c.decoder_layers, where);
  f2c_read(t, "encoder_attention_heads", c.encoder_attention_heads, where);
  f2c_read(t, "decoder_attention_heads", c.decoder_attention_heads, where);
  f2c_read(t, "encoder_ffn_dim", c.encoder_ffn_dim, where);
  f2c_read(t, "decoder_ffn_dim", c.decoder_ffn_dim, where);
  f2c_read(t, "max_position_embeddings", c.max_position_embeddings, where);
  f2c_read(t, "activation_function", c.activation_function, where);
  f2c_read(t, "scale_embedding", c.scale_embedding, where);
  f2c_read(t, "bos_token_id", c.bos_token_id, where);
  f2c_read(t, "pad_token_id", c.pad_token_id, where);
  f2c_read(t, "eos_token_id", c.eos_token_id, where);
  f2c_read(t, "decoder_start_token_id", c.decoder_start_token_id, where);
  f2c_read(t, "forced_bos_token_id", c.forced_bos_token_id, where);
  f2c_read(t, "forced_eos_token_id", c.forced_eos_token_id, where);
  f2c_read(t, "num_beams", c.num_beams, where);
  f2c_read(t, "no_repeat_ngram_size", c.no_repeat_ngram_size, where);
  f2c_read(t, "early_stopping", c.early_stopping, where);
  f2c_read(t, "length_penalty", c.length_penalty, where);
  LS_CHECK(c.activation_function == "gelu", where, ": text activation_function \"", c.activation_function,
           "\" is not supported (Florence-2 uses gelu)");
  if (auto it = t.find("normalize_before"); it != t.end() && it->is_boolean())
    LS_CHECK(!it->get<bool>(), where, ": normalize_before true (pre-LayerNorm BART) is not supported; Florence-2 is post-LayerNorm");
  if (auto it = t.find("add_final_layer_norm"); it != t.end() && it->is_boolean())
    LS_CHECK(!it->get<bool>(), where, ": add_final_layer_norm true is not supported; Florence-2 has none");
  LS_CHECK(c.vocab_size > 0 && c.d_model > 0 && c.encoder_attention_heads > 0 && c.decoder_attention_heads > 0 &&
               c.d_model % c.encoder_attention_heads == 0 && c.d_model % c.decoder_attention_heads == 0 &&
               c.encoder_layers >= 0 && c.decoder_layers >= 0 && c.encoder_ffn_dim > 0 && c.decoder_ffn_dim > 0 &&
               c.max_position_embeddings > 0,
           where, ": the text config's sizes are inconsistent (d_model ", c.d_model, ", heads ",
           c.encoder_attention_heads, "/", c.decoder_attention_heads, ")");
  LS_CHECK(c.num_beams >= 1 && c.no_repeat_ngram_size >= 0, where, ": num_beams must be >= 1");
}

}  // namespace

Florence2Config Florence2Config::base() { return Florence2Config{}; }

Florence2Config Florence2Config::large() {
  Florence2Config c;
  c.vision.embed_dim = {256, 512, 1024, 2048};
  c.vision.num_heads = {8, 16, 32, 64};
  c.vision.num_groups = {8, 16, 32, 64};
  c.vision.projection_dim = 1024;
  c.text.d_model = 1024;
  c.text.encoder_layers = c.text.decoder_layers = 12;
  c.text.encoder_attention_heads = c.text.decoder_attention_heads = 16;
  c.text.encoder_ffn_dim = c.text.decoder_ffn_dim = 4096;
  return c;
}

Florence2Config parse_florence2_config(const std::string& json_text, const std::string& name_for_errors) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    LS_FAIL(name_for_errors, ": not valid JSON (", e.what(), "); the model folder's config.json is damaged");
  }
  const std::string& where = name_for_errors;
  LS_CHECK(root.is_object(), where, ": not a JSON object; expected Florence-2's config.json");
  std::string model_type = root.value("model_type", std::string());
  LS_CHECK(model_type == "florence2", where, ": model_type \"", model_type,
           "\" is not Florence-2's (\"florence2\"); pass --model_dir with a microsoft/Florence-2-* snapshot");
  Florence2Config c;
  const json vision = root.value("vision_config", json::object());
  const json text = root.value("text_config", json::object());
  LS_CHECK(vision.is_object() && text.is_object(), where, ": vision_config and text_config must be objects");
  std::string vision_type = vision.value("model_type", std::string("davit"));
  if (vision_type == "davit") {
    c.layout = Florence2Layout::kMicrosoft;
  } else if (vision_type == "florence_vision") {
    c.layout = Florence2Layout::kTransformers;
  } else {
    LS_FAIL(where, ": vision model_type \"", vision_type,
            "\" is not supported (Florence-2's is \"davit\", or \"florence_vision\" in the transformers port)");
  }
  bool microsoft = c.layout == Florence2Layout::kMicrosoft;
  f2c_parse_vision(vision, c.vision, microsoft, where);
  f2c_parse_text(text, c.text, where);
  // Microsoft's top level repeats projection_dim and vocab_size; the sub-configs are authoritative.
  if (!microsoft) f2c_read(root, "image_token_id", c.image_token_id, where);
  LS_CHECK(c.vision.projection_dim == c.text.d_model, where, ": the image projection (", c.vision.projection_dim,
           ") must equal the language model's d_model (", c.text.d_model, ")");
  return c;
}

Florence2Config read_florence2_config(const std::string& path) {
  return parse_florence2_config(core::read_file(path), path);
}

}  // namespace ls::caption
