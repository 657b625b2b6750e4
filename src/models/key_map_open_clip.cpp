// open_clip text encoder <-> Hugging Face CLIP names, as tables (STYLE habit 3).
// References: open_clip src/open_clip/transformer.py (resblocks, nn.MultiheadAttention's stacked
// in_proj), kohya-ss/sd-scripts library/sdxl_model_util.py (convert_sdxl_text_encoder_2_checkpoint).
#include "models/key_map_open_clip.h"

#include <array>
#include <cctype>
#include <map>
#include <optional>

#include <torch/torch.h>

#include "core/error.h"

namespace ls::models {

namespace {

struct NamePair {
  const char* open_clip;
  const char* hf;
};

// Tensors outside the layer stack.
constexpr NamePair kGlobalNames[] = {
    {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
    {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
    {"ln_final.weight", "text_model.final_layer_norm.weight"},
    {"ln_final.bias", "text_model.final_layer_norm.bias"},
    {"text_projection", "text_projection"},  // [C, P] both sides: applied as x @ P, never transposed
    {"logit_scale", "logit_scale"},
};

constexpr const char* kOpenClipLayerPrefix = "transformer.resblocks.";
constexpr const char* kHfLayerPrefix = "text_model.encoder.layers.";

// Per-layer suffixes that map one to one.
constexpr NamePair kLayerNames[] = {
    {"ln_1.weight", "layer_norm1.weight"},
    {"ln_1.bias", "layer_norm1.bias"},
    {"ln_2.weight", "layer_norm2.weight"},
    {"ln_2.bias", "layer_norm2.bias"},
    {"mlp.c_fc.weight", "mlp.fc1.weight"},
    {"mlp.c_fc.bias", "mlp.fc1.bias"},
    {"mlp.c_proj.weight", "mlp.fc2.weight"},
    {"mlp.c_proj.bias", "mlp.fc2.bias"},
    {"attn.out_proj.weight", "self_attn.out_proj.weight"},
    {"attn.out_proj.bias", "self_attn.out_proj.bias"},
};

// nn.MultiheadAttention keeps q, k, v as one [3C, ...] tensor, rows in this order.
struct FusedNames {
  const char* open_clip;
  std::array<const char*, 3> hf;
};
constexpr FusedNames kFusedNames[] = {
    {"attn.in_proj_weight", {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"}},
    {"attn.in_proj_bias", {"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"}},
};

/// "<prefix><N>.<suffix>" -> (N as written, suffix)
std::optional<std::pair<std::string, std::string>> split_layer(const std::string& key, const std::string& prefix) {
  if (key.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  size_t i = prefix.size();
  size_t start = i;
  while (i < key.size() && std::isdigit(static_cast<unsigned char>(key[i]))) ++i;
  if (i == start || i >= key.size() || key[i] != '.') return std::nullopt;
  return std::make_pair(key.substr(start, i - start), key.substr(i + 1));
}

/// Where an HF key lives on the open_clip side: the key, and which third of a fused in_proj (-1: whole).
struct OpenClipSlot {
  std::string key;
  int part = -1;
};

std::optional<OpenClipSlot> locate_hf(const std::string& hf_key) {
  for (const auto& n : kGlobalNames) {
    if (hf_key == n.hf) return OpenClipSlot{n.open_clip, -1};
  }
  auto layer = split_layer(hf_key, kHfLayerPrefix);
  if (!layer) return std::nullopt;
  const auto& [index, suffix] = *layer;
  std::string base = std::string(kOpenClipLayerPrefix) + index + ".";
  for (const auto& n : kLayerNames) {
    if (suffix == n.hf) return OpenClipSlot{base + n.open_clip, -1};
  }
  for (const auto& f : kFusedNames) {
    for (int part = 0; part < 3; ++part) {
      if (suffix == f.hf[part]) return OpenClipSlot{base + f.open_clip, part};
    }
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> hf_keys_for(const std::string& open_clip_key) {
  for (const auto& n : kGlobalNames) {
    if (open_clip_key == n.open_clip) return {n.hf};
  }
  auto layer = split_layer(open_clip_key, kOpenClipLayerPrefix);
  if (!layer) return {};
  const auto& [index, suffix] = *layer;
  std::string base = std::string(kHfLayerPrefix) + index + ".";
  for (const auto& n : kLayerNames) {
    if (suffix == n.open_clip) return {base + n.hf};
  }
  for (const auto& f : kFusedNames) {
    if (suffix == f.open_clip) return {base + f.hf[0], base + f.hf[1], base + f.hf[2]};
  }
  return {};
}

NamedTensors open_clip_to_hf(const std::string& key, const at::Tensor& value) {
  auto hf = hf_keys_for(key);
  LS_CHECK(!hf.empty(), "open_clip text encoder: tensor '", key,
           "' is not part of an open_clip text model; is this an SDXL checkpoint?");
  if (hf.size() == 1) return {{hf[0], value}};
  LS_CHECK(value.dim() >= 1 && value.size(0) % 3 == 0, "open_clip text encoder: '", key,
           "' must stack q, k, v along its first dimension (a multiple of 3), got shape ", value.sizes());
  int64_t rows = value.size(0) / 3;
  NamedTensors out;
  for (int part = 0; part < 3; ++part) out.emplace_back(hf[part], value.narrow(0, part * rows, rows));
  return out;
}

std::string open_clip_key_for(const std::string& hf_key) {
  auto slot = locate_hf(hf_key);
  LS_CHECK(slot.has_value(), "open_clip key map: '", hf_key, "' is not a CLIP text model parameter name");
  return slot->key;
}

NamedTensors hf_to_open_clip(const NamedTensors& hf_state) {
  struct Pending {
    size_t slot;
    std::array<at::Tensor, 3> parts;
  };
  NamedTensors out;
  std::map<std::string, Pending> fused;  // open_clip key -> q/k/v collected so far
  for (const auto& [hf_key, value] : hf_state) {
    auto slot = locate_hf(hf_key);
    LS_CHECK(slot.has_value(), "open_clip key map: '", hf_key,
             "' has no open_clip name; only CLIP text model parameters can be written as TE2");
    if (slot->part < 0) {
      out.emplace_back(slot->key, value);
      continue;
    }
    auto it = fused.find(slot->key);
    if (it == fused.end()) {
      it = fused.emplace(slot->key, Pending{out.size(), {}}).first;
      out.emplace_back(slot->key, at::Tensor());  // filled below, keeps the position
    }
    LS_CHECK(!it->second.parts[slot->part].defined(), "open_clip key map: '", hf_key, "' appears twice");
    it->second.parts[slot->part] = value;
  }
  for (auto& [key, pending] : fused) {
    auto names = hf_keys_for(key);
    for (int part = 0; part < 3; ++part) {
      LS_CHECK(pending.parts[part].defined(), "open_clip key map: '", names[part], "' is missing, so '", key,
               "' cannot be written; q, k and v of a layer go together");
      LS_CHECK(pending.parts[part].sizes() == pending.parts[0].sizes(), "open_clip key map: '", names[part],
               "' has shape ", pending.parts[part].sizes(), " but '", names[0], "' has ",
               pending.parts[0].sizes());
    }
    out[pending.slot].second = torch::cat({pending.parts[0], pending.parts[1], pending.parts[2]}, 0);
  }
  return out;
}

}  // namespace ls::models
