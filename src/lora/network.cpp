#include "lora/network.h"

#include <algorithm>
#include <regex>

#include <torch/torch.h>

#include "core/error.h"
#include "lora/adapters.h"
#include "models/clip_text.h"
#include "models/unet_blocks.h"

namespace ls::lora {

namespace {

std::string underscores(std::string path) {
  std::replace(path.begin(), path.end(), '.', '_');
  return path;
}

enum class Container { kNone, kTransformer, kConvBlock, kText };

// kohya decides by class name; these are our classes for its Transformer2DModel,
// ResnetBlock2D / Downsample2D / Upsample2D, CLIPAttention / CLIPMLP.
Container container_kind(const torch::nn::Module& m) {
  if (dynamic_cast<const models::SpatialTransformerImpl*>(&m)) return Container::kTransformer;
  if (dynamic_cast<const models::ResBlockImpl*>(&m) || dynamic_cast<const models::DownsampleImpl*>(&m) ||
      dynamic_cast<const models::UpsampleImpl*>(&m)) {
    return Container::kConvBlock;
  }
  if (dynamic_cast<const models::ClipAttentionImpl*>(&m) || dynamic_cast<const models::ClipMlpImpl*>(&m)) {
    return Container::kText;
  }
  return Container::kNone;
}

void collect(torch::nn::Module& root, Part part, std::vector<LoraSlot>& out) {
  for (const auto& item : root.named_modules("", false)) {
    Container kind = container_kind(*item.value());
    if (kind == Container::kNone) continue;
    for (const auto& child : item.value()->named_modules("", false)) {
      LoraSlot slot{std::string(part_prefix(part)) + "_" + underscores(item.key() + "." + child.key()), part, {},
                    false, kind == Container::kConvBlock};
      slot.in_resblock = dynamic_cast<const models::ResBlockImpl*>(item.value().get()) != nullptr;
      if (auto lin = std::dynamic_pointer_cast<nn::LinearImpl>(child.value())) {
        slot.target.linear = nn::Linear(lin);
      } else if (auto conv = std::dynamic_pointer_cast<nn::Conv2dImpl>(child.value())) {
        slot.target.conv = nn::Conv2d(conv);
        slot.conv3x3 = conv->kernel() != 1;
      } else {
        continue;
      }
      out.push_back(std::move(slot));
    }
  }
}

// lycoris/config.py's presets on kohya's SDXL model (sdxl_original_unet's class names): which
// containers each targets and whether 3x3 convs get conv_dim. The diffusers-only target names
// (conv_in, conv_out, time_embedding.*) match nothing there, so they add nothing.
struct LycorisPreset {
  const char* name;
  bool conv, transformer, resblock, sample, te;
  bool attn_only;  // CrossAttention / CLIPAttention only
};
constexpr LycorisPreset kLycorisPresets[] = {
    {"full", true, true, true, true, true, false},
    {"full-lin", false, true, true, false, true, false},
    {"attn-mlp", false, true, false, false, true, false},
    {"attn-only", false, true, false, false, true, true},
    {"unet-only", true, true, true, true, false, false},
    {"unet-transformer-only", false, true, false, false, false, false},
    {"unet-convblock-only", true, false, true, true, false, false},
};

const LycorisPreset& lycoris_preset(const std::string& name) {
  for (const LycorisPreset& p : kLycorisPresets)
    if (name == p.name) return p;
  LS_FAIL("network_args preset=", name, " is not a lycoris preset lorastudio knows; use full, full-lin, attn-mlp, ",
          "attn-only, unet-only, unet-transformer-only or unet-convblock-only");
}

// lycoris.kohya create_modules: a preset's container gives every Linear and 1x1 conv the network
// rank and every 3x3 conv conv_dim (none when 0 or the preset has no convs).
ModuleRank lycoris_slot_rank(const LoraSlot& slot, const LoraNetworkOptions& o) {
  const LycorisPreset& p = lycoris_preset(o.preset);
  bool kept;
  if (slot.part != Part::kUnet) kept = p.te && (!p.attn_only || slot.name.find("_self_attn_") != std::string::npos);
  else if (slot.in_resblock) kept = p.resblock;
  else if (slot.in_conv_block) kept = p.sample;
  else kept = p.transformer && (!p.attn_only || (slot.name.find("_attn1_") != std::string::npos ||
                                                        slot.name.find("_attn2_") != std::string::npos));
  if (!kept) return {};
  if (slot.conv3x3) return p.conv && o.conv_rank > 0 ? ModuleRank{o.conv_rank, o.conv_alpha} : ModuleRank{};
  return {o.rank, o.alpha};
}

}  // namespace

const std::vector<std::string>& lycoris_presets() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const LycorisPreset& p : kLycorisPresets) n.push_back(p.name);
    return n;
  }();
  return names;
}

const char* part_prefix(Part part) {
  switch (part) {
    case Part::kUnet: return "lora_unet";
    case Part::kTe1: return "lora_te1";
    case Part::kTe2: return "lora_te2";
  }
  return "";
}

std::map<std::string, LoraSlot> all_lora_slots(const models::SdxlModel& model) {
  std::vector<LoraSlot> slots;
  if (model.unet) collect(*model.unet.ptr(), Part::kUnet, slots);
  if (model.te1) collect(*model.te1.ptr(), Part::kTe1, slots);
  if (model.te2) collect(*model.te2.ptr(), Part::kTe2, slots);
  std::map<std::string, LoraSlot> by_name;
  for (auto& s : slots) by_name.emplace(s.name, s);
  return by_name;
}

ModuleRank slot_rank(const LoraSlot& slot, const LoraNetworkOptions& options) {
  if (options.module_ranks) {
    auto it = options.module_ranks->find(slot.name);
    return it == options.module_ranks->end() ? ModuleRank{} : it->second;
  }
  if (options.blocks.ranks && slot.part == Part::kUnet)
    return block_module_rank(slot.name, slot.conv3x3, slot.in_conv_block, *options.blocks.ranks);
  if (options.lycoris) return lycoris_slot_rank(slot, options);
  // ResBlocks, Down- and Upsamples are targets only with a conv rank (kohya: conv_dim given).
  if ((slot.in_conv_block || slot.conv3x3) && options.conv_rank <= 0) return {};
  return slot.conv3x3 ? ModuleRank{options.conv_rank, options.conv_alpha} : ModuleRank{options.rank, options.alpha};
}

std::vector<LoraSlot> find_lora_slots(const models::SdxlModel& model, const LoraNetworkOptions& options) {
  std::vector<std::regex> exclude;
  for (const auto& pattern : options.exclude) {
    try {
      exclude.emplace_back(pattern);
    } catch (const std::regex_error& e) {
      LS_FAIL("network exclude pattern '", pattern, "' is not a valid regex (", e.what(), ")");
    }
  }
  std::vector<LoraSlot> kept;
  for (auto& [name, s] : all_lora_slots(model)) {
    bool wanted = s.part == Part::kUnet ? options.unet : options.text_encoders;
    if (!wanted || slot_rank(s, options).rank <= 0) continue;
    bool excluded = std::any_of(exclude.begin(), exclude.end(),
                                [&](const std::regex& r) { return std::regex_search(s.name, r); });
    if (!excluded) kept.push_back(s);
  }
  return kept;  // by name: all_lora_slots is a sorted map
}

LoraNetworkImpl::LoraNetworkImpl(const models::SdxlModel& model, const LoraNetworkOptions& options) {
  for (const auto& slot : find_lora_slots(model, options)) {
    const ModuleRank r = slot_rank(slot, options);
    LoraModuleOptions o = options.module;  // the algorithm (LyCORIS) and its options
    o.lycoris = options.lycoris;
    o.rank = r.rank;
    o.alpha = r.alpha;
    o.dropout = options.dropout;
    o.rank_dropout = options.rank_dropout;
    o.module_dropout = options.module_dropout;
    add(slot, o);
  }
}

LoraNetworkImpl::LoraNetworkImpl(const std::vector<std::pair<LoraSlot, LoraModuleOptions>>& slots) {
  for (const auto& [slot, options] : slots) add(slot, options);
}

void LoraNetworkImpl::add(const LoraSlot& slot, const LoraModuleOptions& options) {
  auto module = register_module(slot.name, make_adapter(slot.target, options));
  modules_.emplace_back(slot, module);
}

void LoraNetworkImpl::apply() {
  if (applied_) return;
  for (auto& [slot, module] : modules_) slot.target.add_adapter(module);
  applied_ = true;
}

void LoraNetworkImpl::remove() {
  if (!applied_) return;
  for (auto& [slot, module] : modules_) slot.target.remove_adapter(module.get());
  applied_ = false;
}

void LoraNetworkImpl::set_multiplier(double multiplier) {
  for (auto& [slot, module] : modules_) module->set_multiplier(multiplier);
}

void LoraNetworkImpl::merge_into_base() {
  torch::NoGradGuard no_grad;
  for (auto& [slot, module] : modules_) {
    auto w = slot.target.weight();
    w.add_(module->weight_delta().to(w.scalar_type()));
  }
}

std::map<Part, int64_t> LoraNetworkImpl::parameter_counts() const {
  std::map<Part, int64_t> counts;
  for (const auto& [slot, module] : modules_) {
    int64_t n = 0;
    for (const auto& [key, t] : module->named_state()) n += t.numel();
    counts[slot.part] += n;
  }
  return counts;
}

}  // namespace ls::lora
