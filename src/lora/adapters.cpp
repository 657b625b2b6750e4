#include "lora/adapters.h"

#include <set>

#include "core/error.h"
#include "lora/loha_module.h"
#include "lora/lokr_module.h"
#include "lora/lora_module.h"

namespace ls::lora {

std::shared_ptr<AdapterModule> make_adapter(const LoraTarget& target, const LoraModuleOptions& options) {
  switch (options.algo) {
    case Algo::kLoha: return std::make_shared<LohaModule>(target, options);
    case Algo::kLokr: return std::make_shared<LokrModule>(target, options);
    case Algo::kLora: break;
  }
  return std::make_shared<LoraModuleImpl>(target, options);
}

TensorShapes adapter_tensor_shapes(c10::IntArrayRef base, const LoraModuleOptions& options) {
  TensorShapes s{{"alpha", {}}};
  const TensorShapes own = options.algo == Algo::kLoha   ? loha_tensor_shapes(base, options)
                           : options.algo == Algo::kLokr ? lokr_tensor_shapes(base, options)
                                                         : lora_tensor_shapes(base, options);
  s.insert(s.end(), own.begin(), own.end());
  if (options.dora) s.push_back({"dora_scale", dora_scale_shape(base, options.wd_on_out)});
  return s;
}

bool is_adapter_key(const std::string& suffix) {
  static const std::set<std::string> keys = {
      "alpha",     "dora_scale", "lora_down.weight", "lora_up.weight", "lora_mid.weight", "hada_w1_a",
      "hada_w1_b", "hada_w2_a",  "hada_w2_b",        "hada_t1",        "hada_t2",         "lokr_w1",
      "lokr_w1_a", "lokr_w1_b",  "lokr_w2",          "lokr_w2_a",      "lokr_w2_b",       "lokr_t2"};
  return keys.count(suffix) > 0;
}

namespace {

int64_t adapters_dim(const std::map<std::string, std::vector<int64_t>>& s, const std::string& key, size_t i) {
  const auto& shape = s.at(key);
  return i < shape.size() ? shape[i] : 0;
}

int64_t adapters_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

LoraModuleOptions adapter_options_from_shapes(const std::map<std::string, std::vector<int64_t>>& s,
                                              c10::IntArrayRef base, const std::string& what) {
  auto has = [&](const char* k) { return s.count(k) > 0; };
  LoraModuleOptions o;
  if (has("hada_w1_a")) {
    o.algo = Algo::kLoha;
    LS_CHECK(has("hada_w1_b"), what, " has hada_w1_a but no hada_w1_b; the file is incomplete");
    o.rank = adapters_dim(s, "hada_w1_b", 0);
    o.tucker = has("hada_t1");
  } else if (has("lokr_w1") || has("lokr_w1_a")) {
    o.algo = Algo::kLokr;
    LokrLayout l;
    l.w1_full = has("lokr_w1");
    l.w2_full = has("lokr_w2");
    l.tucker = has("lokr_t2");
    LS_CHECK((l.w1_full || has("lokr_w1_b")) && (l.w2_full || (has("lokr_w2_a") && has("lokr_w2_b"))), what,
             " lacks a LoKr factor (lokr_w1_b, lokr_w2 or lokr_w2_a / lokr_w2_b); the file is incomplete");
    l.out1 = l.w1_full ? adapters_dim(s, "lokr_w1", 0) : adapters_dim(s, "lokr_w1_a", 0);
    l.in1 = l.w1_full ? adapters_dim(s, "lokr_w1", 1) : adapters_dim(s, "lokr_w1_b", 1);
    int64_t kk = 1;
    for (size_t i = 2; i < base.size(); ++i) kk *= base[i];
    if (l.w2_full) {
      l.out2 = adapters_dim(s, "lokr_w2", 0), l.in2 = adapters_dim(s, "lokr_w2", 1);
    } else if (l.tucker) {
      l.out2 = adapters_dim(s, "lokr_w2_a", 1), l.in2 = adapters_dim(s, "lokr_w2_b", 1);
    } else {
      // lycoris stores a conv's w2_b flattened [r, in2*k*k] (older files may keep the kernel axes)
      l.out2 = adapters_dim(s, "lokr_w2_a", 0);
      l.in2 = adapters_numel(s.at("lokr_w2_b")) / std::max<int64_t>(1, adapters_dim(s, "lokr_w2_b", 0)) / kk;
    }
    // ComfyUI and lycoris read the rank off the factorised half; both halves full have none.
    o.rank = !l.w1_full ? adapters_dim(s, "lokr_w1_b", 0) : !l.w2_full ? adapters_dim(s, "lokr_w2_b", 0) : 1;
    o.tucker = l.tucker;
    o.lokr_layout = l;
    LS_CHECK(l.out1 * l.out2 == base[0] && l.in1 * l.in2 == base[1], what, ": LoKr factors ", l.out1, "x", l.out2,
             " / ", l.in1, "x", l.in2, " do not make the layer's ", base[0], " / ", base[1],
             " channels; this file was made for another model");
  } else if (has("lora_down.weight")) {
    o.algo = Algo::kLora;
    LS_CHECK(!has("lora_mid.weight"), what, " has lora_mid.weight (a LoCon with use_tucker), which lorastudio ",
             "does not read; use a LoCon without Tucker");
    LS_CHECK(has("lora_up.weight"), what, " lacks its lora_up weight; the file is incomplete");
    o.rank = adapters_dim(s, "lora_down.weight", 0);
  } else {
    LS_FAIL(what, " has none of lora_down / hada_w1_a / lokr_w1(_a): not a LoRA, LoHa or LoKr module");
  }
  LS_CHECK(o.rank > 0, what, " has a rank-0 factor; the file is damaged");
  if (has("dora_scale")) {
    o.dora = true;
    // [out, 1, ...] per output row; [1, in, ...] per input column (lycoris wd_on_output=False).
    const auto& d = s.at("dora_scale");
    o.wd_on_out = !(d.size() > 1 && d[0] == 1 && d[1] == base[1] && base[0] != 1);
  }
  // Every tensor the module needs must be in the file with its shape, and nothing else.
  const TensorShapes want = adapter_tensor_shapes(base, o);
  std::set<std::string> wanted;
  for (const auto& [key, shape] : want) {
    wanted.insert(key);
    if (key == "alpha") continue;  // absent: alpha = rank
    auto it = s.find(key);
    LS_CHECK(it != s.end(), what, " lacks ", key, "; the file is incomplete");
    const bool same = it->second == shape ||
                      (key == "lokr_w2_b" && adapters_numel(it->second) == adapters_numel(shape) &&
                       !it->second.empty() && it->second[0] == shape[0]);
    LS_CHECK(same, what, ".", key, " has shape ", c10::IntArrayRef(it->second), " but the model needs ",
             c10::IntArrayRef(shape), "; this file was made for another model");
  }
  for (const auto& [key, shape] : s)
    LS_CHECK(wanted.count(key), what, " has ", key, ", which a ", algo_name(o.algo), " module of this layer does not use");
  return o;
}

}  // namespace ls::lora
