// Prefix tables for diffusers names; see key_map_diffusers.h.
#include "models/key_map_diffusers.h"

#include <utility>

#include "core/error.h"

namespace ls::models {

namespace {

// A rule matches a whole name, or a prefix when it ends with '.'.
bool key_rule_matches(const std::string& rule, const std::string& key) {
  if (rule.empty()) return false;
  if (rule.back() != '.') return key == rule;
  return key.size() > rule.size() && key.compare(0, rule.size(), rule) == 0;
}

std::optional<MappedKey> key_rule_apply(const std::vector<KeyRule>& rules, const std::string& key, bool to_lorastudio) {
  const KeyRule* best = nullptr;
  for (const KeyRule& r : rules) {
    if (!to_lorastudio && r.legacy) continue;
    const std::string& from = to_lorastudio ? r.diffusers : r.lorastudio;
    if (key_rule_matches(from, key) && (!best || from.size() > (to_lorastudio ? best->diffusers : best->lorastudio).size()))
      best = &r;
  }
  if (!best) return std::nullopt;
  const std::string& from = to_lorastudio ? best->diffusers : best->lorastudio;
  const std::string& to = to_lorastudio ? best->lorastudio : best->diffusers;
  return MappedKey{to + key.substr(from.size()), best->transform};
}

}  // namespace

KeyMap::KeyMap(std::vector<KeyRule> rules) : rules_(std::move(rules)) {}

std::optional<MappedKey> KeyMap::to_lorastudio(const std::string& diffusers_key) const {
  return key_rule_apply(rules_, diffusers_key, true);
}

std::optional<MappedKey> KeyMap::to_diffusers(const std::string& lorastudio_key) const {
  return key_rule_apply(rules_, lorastudio_key, false);
}

at::Tensor to_lorastudio_tensor(const at::Tensor& t, TensorTransform transform) {
  switch (transform) {
    case TensorTransform::kNone: return t;
    case TensorTransform::kTranspose:
      LS_CHECK(t.dim() == 2, "diffusers key map: a transposed tensor must be 2-d, got ", t.sizes());
      return t.t();
    case TensorTransform::kConv1x1:
      LS_CHECK(t.dim() == 2, "diffusers key map: a Linear weight for a 1x1 conv must be 2-d, got ", t.sizes());
      return t.reshape({t.size(0), t.size(1), 1, 1});
  }
  return t;
}

at::Tensor to_diffusers_tensor(const at::Tensor& t, TensorTransform transform) {
  switch (transform) {
    case TensorTransform::kNone: return t;
    case TensorTransform::kTranspose: return t.t();
    case TensorTransform::kConv1x1:
      LS_CHECK(t.dim() == 4 && t.size(2) == 1 && t.size(3) == 1, "diffusers key map: expected a 1x1 conv weight, got ",
               t.sizes());
      return t.reshape({t.size(0), t.size(1)});
  }
  return t;
}

std::vector<int64_t> to_lorastudio_shape(std::vector<int64_t> shape, TensorTransform transform) {
  if (shape.size() != 2) return shape;  // a wrong rank shows as a shape mismatch
  if (transform == TensorTransform::kTranspose) return {shape[1], shape[0]};
  if (transform == TensorTransform::kConv1x1) return {shape[0], shape[1], 1, 1};
  return shape;
}

bool is_clip_position_ids(const std::string& key) {
  return key == "text_model.embeddings.position_ids" || key == "embeddings.position_ids";
}

const KeyMap& diffusers_te1_map() {
  // transformers 5 saves CLIPTextModel without the text_model wrapper; older files (the hub's SDXL)
  // have it. Both are read; the older spelling is written, since every transformers reads it.
  static const KeyMap map(std::vector<KeyRule>{{"text_model.", "text_model."},
                                               {"embeddings.", "text_model.embeddings.", TensorTransform::kNone, true},
                                               {"encoder.", "text_model.encoder.", TensorTransform::kNone, true},
                                               {"final_layer_norm.", "text_model.final_layer_norm.", TensorTransform::kNone, true}});
  return map;
}

const KeyMap& diffusers_te2_map() {
  static const KeyMap map(std::vector<KeyRule>{
      {"text_model.", "text_model."}, {"text_projection.weight", "text_projection", TensorTransform::kTranspose}});
  return map;
}

}  // namespace ls::models
