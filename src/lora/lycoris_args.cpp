#include "lora/lycoris_args.h"

#include <algorithm>

#include "core/error.h"
#include "core/strings.h"

namespace ls::lora {

namespace {

// lycoris/utils str_bool: str(val).lower() != "false".
bool lycoris_str_bool(const std::string& v) { return core::ascii_lower(v) != "false"; }

int64_t lycoris_int(const std::string& key, const std::string& v) {
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  LS_FAIL("network_args ", key, "=", v, ": expected an integer (lycoris reads int(", key, "))");
}

void lycoris_refuse_true(const std::string& key, const std::string& v, const char* why) {
  LS_CHECK(!lycoris_str_bool(v), "network_args ", key, "=", v, ": ", why);
}

}  // namespace

const std::vector<std::string>& lycoris_arg_keys() {
  static const std::vector<std::string> keys = {
      "algo",         "preset",           "use_tucker",   "use_cp",          "use_conv_cp",
      "disable_conv_cp", "factor",        "decompose_both", "full_matrix",   "dora_wd",
      "wd_on_output", "rs_lora",          "unbalanced_factorization", "rank_dropout_scale", "use_scalar",
      "train_norm",   "bypass_mode",      "block_size",   "constraint",      "rescaled",
      "train_t5xxl",  "train_llm_adapter"};
  return keys;
}

bool apply_lycoris_arg(LoraNetworkOptions& o, const std::string& key, const std::string& value) {
  LoraModuleOptions& m = o.module;
  if (key == "algo") {
    const std::string algo = core::ascii_lower(value);
    if (algo == "lora" || algo == "locon") m.algo = Algo::kLora;
    else if (algo == "loha") m.algo = Algo::kLoha;
    else if (algo == "lokr") m.algo = Algo::kLokr;
    else LS_FAIL("network_args algo=", value, ": lorastudio trains lycoris' lora, locon, loha and lokr; not ", value);
  } else if (key == "preset") {
    const auto& names = lycoris_presets();
    LS_CHECK(std::find(names.begin(), names.end(), value) != names.end(), "network_args preset=", value,
             ": not a builtin lycoris preset (preset files are not read); use full, full-lin, attn-mlp, attn-only, ",
             "unet-only, unet-transformer-only or unet-convblock-only");
    o.preset = value;
  } else if (key == "use_tucker" || key == "use_cp" || key == "use_conv_cp") {
    m.tucker = m.tucker || lycoris_str_bool(value);
  } else if (key == "disable_conv_cp") {
    // lycoris maps the old name onto use_tucker with the value as given (a deprecation quirk).
    m.tucker = m.tucker || lycoris_str_bool(value);
  } else if (key == "factor") {
    m.factor = lycoris_int(key, value);
  } else if (key == "decompose_both") {
    m.decompose_both = !value.empty();  // lycoris passes the text on: "False" is true there too
  } else if (key == "full_matrix") {
    m.full_matrix = lycoris_str_bool(value);
  } else if (key == "dora_wd") {
    m.dora = lycoris_str_bool(value);
  } else if (key == "wd_on_output") {
    m.wd_on_out = lycoris_str_bool(value);
  } else if (key == "rs_lora") {
    m.rs_lora = lycoris_str_bool(value);
  } else if (key == "unbalanced_factorization") {
    m.unbalanced_factorization = lycoris_str_bool(value);
  } else if (key == "use_scalar") {
    lycoris_refuse_true(key, value, "lycoris' trained scalar is not implemented; leave use_scalar out");
  } else if (key == "train_norm") {
    lycoris_refuse_true(key, value, "lycoris' norm-layer training is not implemented; leave train_norm out");
  } else if (key == "bypass_mode") {
    lycoris_refuse_true(key, value, "bypass mode (for quantized bases) is not implemented; lorastudio rebuilds the "
                        "weight as lycoris' default mode does");
  } else if (key == "rank_dropout_scale" || key == "block_size" || key == "constraint" || key == "rescaled" ||
             key == "train_t5xxl" || key == "train_llm_adapter") {
    // lycoris.kohya 4.1.3 does not pass rank_dropout_scale on, and the rest belong to other
    // algorithms or models: accepted, without effect, as there.
  } else {
    return false;
  }
  return true;
}

void apply_lycoris_conv_defaults(LoraNetworkOptions& o, bool conv_dim_given, bool conv_alpha_given) {
  if (!conv_dim_given) o.conv_rank = o.rank;
  if (!conv_alpha_given) o.conv_alpha = o.alpha;
}

}  // namespace ls::lora
