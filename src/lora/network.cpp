#include "lora/network.h"

#include <algorithm>
#include <regex>

#include <torch/torch.h>

#include "core/error.h"
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

}  // namespace

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
    LoraModuleOptions o;
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
  auto module = register_module(slot.name, LoraModule(slot.target, options));
  modules_.emplace_back(slot, module);
}

void LoraNetworkImpl::apply() {
  if (applied_) return;
  for (auto& [slot, module] : modules_) slot.target.add_adapter(module.ptr());
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
    int64_t n = 1;  // alpha
    for (const auto& p : module->parameters()) n += p.numel();
    counts[slot.part] += n;
  }
  return counts;
}

}  // namespace ls::lora
