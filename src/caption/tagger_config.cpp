#include "caption/tagger_config.h"

#include <algorithm>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/nearest_name.h"

namespace ls::caption {

namespace {

using nlohmann::json;

// timm's registered model functions: the arguments each passes to its class, on top of the
// class defaults (VisionTransformer: class token, token pooling, GELU; Eva: class token, average
// pooling; SwinTransformerV2 / ConvNeXt: average pooling).
TaggerConfig vit(int64_t dim, int64_t depth, int64_t heads) {
  TaggerConfig c;
  c.family = TaggerFamily::kVit;
  c.embed_dim = dim, c.depth = depth, c.num_heads = heads;
  return c;
}

const std::map<std::string, TaggerConfig>& architectures() {
  static const std::map<std::string, TaggerConfig> table = [] {
    std::map<std::string, TaggerConfig> t;
    t["vit_base_patch16_224"] = vit(768, 12, 12);
    t["vit_large_patch16_224"] = vit(1024, 24, 16);

    TaggerConfig eva;
    eva.family = TaggerFamily::kEva02;
    eva.img_size = 448, eva.patch_size = 14, eva.embed_dim = 1024, eva.depth = 24, eva.num_heads = 16;
    eva.mlp_ratio = 4.0 * 2.0 / 3.0;
    eva.qkv_fused = false, eva.swiglu_mlp = true, eva.scale_mlp = true, eva.use_rot_pos_emb = true;
    eva.ref_feat_shape = {16, 16};
    eva.global_pool = "avg";
    t["eva02_large_patch14_448"] = eva;

    TaggerConfig swin;
    swin.family = TaggerFamily::kSwinV2;
    swin.img_size = 256, swin.patch_size = 4, swin.embed_dim = 128, swin.window_size = 8;
    swin.depths = {2, 2, 18, 2}, swin.stage_heads = {4, 8, 16, 32};
    swin.pretrained_window_sizes = {0, 0, 0, 0};
    swin.global_pool = "avg";
    t["swinv2_base_window8_256"] = swin;

    TaggerConfig convnext;
    convnext.family = TaggerFamily::kConvNext;
    convnext.depths = {3, 3, 27, 3}, convnext.dims = {128, 256, 512, 1024};
    convnext.global_pool = "avg";
    t["convnext_base"] = convnext;
    return t;
  }();
  return table;
}

std::vector<int64_t> int_list(const json& v, const std::string& what) {
  LS_CHECK(v.is_array() && !v.empty(), what, " must be a list of integers");
  std::vector<int64_t> out;
  for (const auto& x : v) {
    LS_CHECK(x.is_number_integer() && x.get<int64_t>() > 0, what, " must be a list of positive integers");
    out.push_back(x.get<int64_t>());
  }
  return out;
}

int64_t positive(const json& v, const std::string& what) {
  LS_CHECK(v.is_number_integer() && v.get<int64_t>() > 0, what, " must be a positive integer");
  return v.get<int64_t>();
}

// img_size / ref_feat_shape may be an int or a square (h, w) pair.
int64_t square(const json& v, const std::string& what) {
  if (v.is_array()) {
    auto l = int_list(v, what);
    LS_CHECK(l.size() == 2 && l[0] == l[1], what, " must be square (lorastudio's taggers take square input)");
    return l[0];
  }
  return positive(v, what);
}

using Setter = std::function<void(TaggerConfig&, const json&, const std::string&)>;

Setter boolean(bool TaggerConfig::*field) {
  return [field](TaggerConfig& c, const json& v, const std::string& what) {
    LS_CHECK(v.is_boolean(), what, " must be true or false");
    c.*field = v.get<bool>();
  };
}

// timm's Optional[bool]: null (-1, timm decides), false (0), true (1).
Setter optional_boolean(int TaggerConfig::*field) {
  return [field](TaggerConfig& c, const json& v, const std::string& what) {
    LS_CHECK(v.is_null() || v.is_boolean(), what, " must be true, false or null");
    c.*field = v.is_null() ? -1 : (v.get<bool>() ? 1 : 0);
  };
}

// model_args lorastudio understands; which family each applies to is checked by the model
// builders through the config's fields (a field another family ignores is refused below).
const std::map<std::string, std::pair<std::vector<TaggerFamily>, Setter>>& model_arg_table() {
  using F = TaggerFamily;
  const std::vector<F> vit_like = {F::kVit, F::kEva02};
  const std::vector<F> all = {F::kVit, F::kEva02, F::kSwinV2, F::kConvNext};
  static const std::map<std::string, std::pair<std::vector<F>, Setter>> table = {
      {"img_size", {{F::kVit, F::kEva02, F::kSwinV2}, [](auto& c, auto& v, auto& w) { c.img_size = square(v, w); }}},
      {"patch_size", {{F::kVit, F::kEva02, F::kSwinV2}, [](auto& c, auto& v, auto& w) { c.patch_size = square(v, w); }}},
      {"embed_dim", {{F::kVit, F::kEva02, F::kSwinV2}, [](auto& c, auto& v, auto& w) { c.embed_dim = positive(v, w); }}},
      {"depth", {vit_like, [](auto& c, auto& v, auto& w) { c.depth = positive(v, w); }}},
      {"num_heads",
       {{F::kVit, F::kEva02, F::kSwinV2},
        [](auto& c, auto& v, auto& w) {
          if (c.family == F::kSwinV2)
            c.stage_heads = int_list(v, w);
          else
            c.num_heads = positive(v, w);
        }}},
      {"mlp_ratio",
       {{F::kVit, F::kEva02, F::kSwinV2},
        [](auto& c, auto& v, auto& w) {
          LS_CHECK(v.is_number() && v.template get<double>() > 0, w, " must be a positive number");
          c.mlp_ratio = v.template get<double>();
        }}},
      {"qkv_bias", {vit_like, boolean(&TaggerConfig::qkv_bias)}},
      {"class_token", {vit_like, boolean(&TaggerConfig::class_token)}},
      {"global_pool", {all, [](auto& c, auto& v, auto& w) {
         LS_CHECK(v.is_string() && (v == "avg" || (v == "token" && (c.family == F::kVit || c.family == F::kEva02))),
                  w, " must be \"avg\"", (c.family == F::kVit || c.family == F::kEva02) ? " or \"token\"" : "");
         c.global_pool = v.template get<std::string>();
       }}},
      {"fc_norm", {{F::kVit}, optional_boolean(&TaggerConfig::fc_norm)}},
      {"use_fc_norm", {{F::kEva02}, optional_boolean(&TaggerConfig::fc_norm)}},
      {"act_layer", {{F::kVit, F::kSwinV2, F::kConvNext}, [](auto& c, auto& v, auto& w) {
         LS_CHECK(v.is_string() && (v == "gelu" || v == "gelu_tanh"), w, " must be \"gelu\" or \"gelu_tanh\"");
         c.act_layer = v.template get<std::string>();
       }}},
      {"qkv_fused", {{F::kEva02}, boolean(&TaggerConfig::qkv_fused)}},
      {"swiglu_mlp", {{F::kEva02}, boolean(&TaggerConfig::swiglu_mlp)}},
      {"scale_mlp", {{F::kEva02}, boolean(&TaggerConfig::scale_mlp)}},
      {"use_rot_pos_emb", {{F::kEva02}, boolean(&TaggerConfig::use_rot_pos_emb)}},
      {"ref_feat_shape", {{F::kEva02}, [](auto& c, auto& v, auto& w) {
         int64_t s = square(v, w);
         c.ref_feat_shape = {s, s};
       }}},
      {"depths", {{F::kSwinV2, F::kConvNext}, [](auto& c, auto& v, auto& w) { c.depths = int_list(v, w); }}},
      {"window_size", {{F::kSwinV2}, [](auto& c, auto& v, auto& w) { c.window_size = square(v, w); }}},
      {"pretrained_window_sizes",
       {{F::kSwinV2}, [](auto& c, auto& v, auto& w) {
          LS_CHECK(v.is_array(), w, " must be a list of integers");
          c.pretrained_window_sizes.clear();
          for (const auto& x : v) {
            LS_CHECK(x.is_number_integer() && x.template get<int64_t>() >= 0, w, " must be a list of integers >= 0");
            c.pretrained_window_sizes.push_back(x.template get<int64_t>());
          }
        }}},
      {"dims", {{F::kConvNext}, [](auto& c, auto& v, auto& w) { c.dims = int_list(v, w); }}},
      {"num_classes", {all, [](auto& c, auto& v, auto& w) { c.num_classes = positive(v, w); }}},
  };
  return table;
}

// Regularisation that does nothing in eval mode.
bool is_inference_noop(const std::string& key) {
  return key == "drop_rate" || key == "drop_path_rate" || key == "attn_drop_rate" || key == "proj_drop_rate" ||
         key == "pos_drop_rate" || key == "patch_drop_rate";
}

std::array<float, 3> three_floats(const json& v, const std::string& what) {
  LS_CHECK(v.is_array() && v.size() == 3, what, " must be a list of 3 numbers");
  std::array<float, 3> out{};
  for (size_t i = 0; i < 3; ++i) {
    LS_CHECK(v[i].is_number(), what, " must be a list of 3 numbers");
    out[i] = v[i].get<float>();
  }
  return out;
}

void validate(const TaggerConfig& c, const std::string& file) {
  LS_CHECK(c.num_classes > 0, file, ": num_classes is missing; is this a timm classifier's config.json?");
  switch (c.family) {
    case TaggerFamily::kVit:
    case TaggerFamily::kEva02:
      LS_CHECK(c.img_size % c.patch_size == 0, file, ": img_size ", c.img_size, " is not a multiple of patch_size ",
               c.patch_size);
      LS_CHECK(c.embed_dim % c.num_heads == 0, file, ": embed_dim ", c.embed_dim, " is not a multiple of num_heads ",
               c.num_heads);
      LS_CHECK(c.class_token || c.global_pool != "token", file, ": global_pool \"token\" needs class_token");
      if (c.family == TaggerFamily::kEva02) {
        LS_CHECK(!c.use_rot_pos_emb || (c.embed_dim / c.num_heads) % 4 == 0, file,
                 ": the rotary embedding needs a head size divisible by 4");
      }
      break;
    case TaggerFamily::kSwinV2:
      LS_CHECK(c.depths.size() == c.stage_heads.size(), file, ": depths and num_heads must have one entry per stage");
      LS_CHECK(c.pretrained_window_sizes.size() == c.depths.size(), file,
               ": pretrained_window_sizes must have one entry per stage");
      LS_CHECK(c.img_size % c.patch_size == 0, file, ": img_size ", c.img_size, " is not a multiple of patch_size ",
               c.patch_size);
      break;
    case TaggerFamily::kConvNext:
      LS_CHECK(c.depths.size() == c.dims.size(), file, ": depths and dims must have one entry per stage");
      break;
  }
}

}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> names;
  for (const auto& [name, config] : architectures()) names.push_back(name);
  return names;
}

TaggerConfig architecture_defaults(const std::string& architecture, const std::string& name_for_errors) {
  auto it = architectures().find(architecture);
  if (it == architectures().end()) {
    std::string list;
    for (const auto& n : supported_architectures()) list += (list.empty() ? "" : ", ") + n;
    LS_FAIL(name_for_errors, ": architecture '", architecture, "' is not one lorastudio builds",
            core::did_you_mean(architecture, supported_architectures()), "; supported: ", list);
  }
  TaggerConfig c = it->second;
  c.architecture = architecture;
  return c;
}

TaggerConfig parse_tagger_config(const std::string& json_text, const std::string& file) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const std::exception& e) {
    LS_FAIL(file, ": not valid JSON (", e.what(), ")");
  }
  LS_CHECK(j.is_object() && j.contains("architecture") && j["architecture"].is_string(), file,
           ": no \"architecture\"; a WD14 v3 tagger's config.json names its timm architecture");
  TaggerConfig c = architecture_defaults(j["architecture"].get<std::string>(), file);
  auto where = [&](const std::string& k) { return file + ": " + k; };
  if (j.contains("num_classes")) c.num_classes = positive(j["num_classes"], where("num_classes"));
  if (j.contains("model_args")) {
    const json& args = j["model_args"];
    LS_CHECK(args.is_object(), file, ": model_args must be an object");
    std::vector<std::string> known;
    for (const auto& [k, row] : model_arg_table()) known.push_back(k);
    for (const auto& [key, value] : args.items()) {
      if (is_inference_noop(key)) continue;
      auto it = model_arg_table().find(key);
      LS_CHECK(it != model_arg_table().end(), file, ": model_args.", key, " is not supported by lorastudio",
               core::did_you_mean(key, known), "; the model would not compute what timm computes");
      const auto& families = it->second.first;
      LS_CHECK(std::find(families.begin(), families.end(), c.family) != families.end(), file, ": model_args.", key,
               " does not apply to ", c.architecture);
      it->second.second(c, value, where("model_args." + key));
    }
  }
  // timm's default (0, 0, 0, 0) means "no pretraining window" for any number of stages.
  if (std::all_of(c.pretrained_window_sizes.begin(), c.pretrained_window_sizes.end(), [](int64_t w) { return w == 0; }))
    c.pretrained_window_sizes.assign(c.depths.size(), 0);
  c.input_size = c.img_size;
  if (j.contains("pretrained_cfg")) {
    const json& p = j["pretrained_cfg"];
    LS_CHECK(p.is_object(), file, ": pretrained_cfg must be an object");
    if (p.contains("input_size")) {
      auto s = int_list(p["input_size"], where("pretrained_cfg.input_size"));
      LS_CHECK(s.size() == 3 && s[0] == 3 && s[1] == s[2], file,
               ": pretrained_cfg.input_size must be [3, S, S] (square RGB input)");
      c.input_size = s[1];
    }
    if (p.contains("mean")) c.mean = three_floats(p["mean"], where("pretrained_cfg.mean"));
    if (p.contains("std")) c.std = three_floats(p["std"], where("pretrained_cfg.std"));
    if (p.contains("interpolation"))
      LS_CHECK(p["interpolation"] == "bicubic", file, ": pretrained_cfg.interpolation ", p["interpolation"].dump(),
               " is not supported (the WD14 taggers use \"bicubic\")");
    for (float s : c.std) LS_CHECK(s > 0, file, ": pretrained_cfg.std must be positive");
  }
  // The patch grid is fixed by img_size; the input must be that size (timm's strict_img_size).
  if (c.family != TaggerFamily::kConvNext)
    LS_CHECK(c.input_size == c.img_size, file, ": pretrained_cfg.input_size ", c.input_size,
             " differs from model_args.img_size ", c.img_size);
  validate(c, file);
  return c;
}

TaggerConfig read_tagger_config(const std::string& path) {
  return parse_tagger_config(core::read_file(path), path);
}

}  // namespace ls::caption
