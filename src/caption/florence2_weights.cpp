#include "caption/florence2_weights.h"

#include <map>
#include <regex>
#include <set>

#include <torch/torch.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "nn/layers.h"
#include "nn/load_report.h"

namespace ls::caption {

namespace fs = std::filesystem;

namespace {

constexpr const char* kF2Shared = "language_model.shared.weight";
constexpr const char* kF2FolderHint =
    "a Florence-2 folder holds config.json, pytorch_model.bin (or model.safetensors), vocab.json, merges.txt and "
    "preprocessor_config.json, as the hub's microsoft/Florence-2-base snapshot";

bool f2w_starts(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Microsoft's DaViT wraps each sub-layer (PreNorm(norm, fn), Residual, DepthWiseConv2d.dw,
// Mlp.net): the native port flattened those wrappers into plain names.
std::string f2w_microsoft_vision(std::string key) {
  static const std::vector<std::pair<std::regex, std::string>> rules = {
      {std::regex(R"(^vision_tower\.convs\.(\d+)\.proj\.)"), "vision_tower.convs.$1.conv."},
      {std::regex(R"(\.(conv1|conv2)\.fn\.dw\.)"), ".$1."},
      {std::regex(R"(\.(window_attn|channel_attn)\.norm\.)"), ".norm1."},
      {std::regex(R"(\.(window_attn|channel_attn)\.fn\.)"), ".$1."},
      {std::regex(R"(\.ffn\.norm\.)"), ".norm2."},
      {std::regex(R"(\.ffn\.fn\.net\.)"), ".ffn."},
  };
  for (const auto& [pattern, replacement] : rules) key = std::regex_replace(key, pattern, replacement);
  return key;
}

// One tensor file of either format, read one tensor at a time.
struct F2Source {
  std::vector<std::pair<std::string, std::vector<int64_t>>> entries;
  std::function<at::Tensor(const std::string&, c10::ScalarType, c10::Device)> load;
};

}  // namespace

Florence2KeyTarget florence2_key_target(const std::string& key, Florence2Layout layout) {
  if (layout == Florence2Layout::kTransformers) {
    if (key == "lm_head.weight") return {kF2Shared};
    if (!f2w_starts(key, "model.")) return {key};  // unexpected: reported under its own name
    std::string k = key.substr(6);
    if (k == "language_model.encoder.embed_tokens.weight" || k == "language_model.decoder.embed_tokens.weight")
      return {kF2Shared};
    return {k};
  }
  if (key == "language_model.lm_head.weight" || key == "language_model.model.encoder.embed_tokens.weight" ||
      key == "language_model.model.decoder.embed_tokens.weight" || key == "language_model.model.shared.weight")
    return {kF2Shared};
  if (f2w_starts(key, "language_model.model.")) return {"language_model." + key.substr(21)};
  if (key == "image_projection") return {"multi_modal_projector.image_projection.weight", true};
  if (f2w_starts(key, "image_proj_norm.")) return {"multi_modal_projector." + key};
  if (f2w_starts(key, "image_pos_embed.")) return {"multi_modal_projector.image_position_embed." + key.substr(16)};
  if (f2w_starts(key, "visual_temporal_embed.")) return {"multi_modal_projector." + key};
  // DaViT's final norms and classification head: Microsoft's Florence-2 deletes them.
  if (f2w_starts(key, "vision_tower.norms.") || f2w_starts(key, "vision_tower.head.")) return {""};
  if (f2w_starts(key, "vision_tower.")) return {f2w_microsoft_vision(key)};
  return {key};
}

text::BartTokenizer load_florence2_tokenizer(const fs::path& dir, Florence2Layout layout) {
  auto added = text::florence2_added_tokens();
  // The native port's processor adds its image placeholder after the task tokens.
  if (layout == Florence2Layout::kTransformers) added.push_back("<image>");
  return text::BartTokenizer::load(dir, added);
}

Florence2Model load_florence2(const fs::path& dir, c10::Device device, c10::ScalarType dtype) {
  LS_CHECK(fs::is_directory(dir), dir.string(), ": no such folder; ", kF2FolderHint);
  const fs::path config_path = dir / "config.json";
  LS_CHECK(fs::exists(config_path), config_path.string(), ": missing; ", kF2FolderHint);
  const Florence2Config config = read_florence2_config(config_path.string());

  // Prefer safetensors (no pickle at all) when a folder has both.
  fs::path weights = dir / "model.safetensors";
  std::unique_ptr<io::SafetensorsReader> st;
  std::unique_ptr<io::TorchCheckpoint> pt;
  F2Source source;
  if (fs::exists(weights)) {
    st = std::make_unique<io::SafetensorsReader>(weights);
    for (const auto& t : st->tensors()) source.entries.emplace_back(t.name, t.shape);
    source.load = [&st](const std::string& name, c10::ScalarType type, c10::Device dev) {
      auto t = st->load(name, type, dev);
      st->release(name);
      return t;
    };
  } else {
    weights = dir / "pytorch_model.bin";
    LS_CHECK(fs::exists(weights), dir.string(), ": has neither pytorch_model.bin nor model.safetensors; ",
             kF2FolderHint);
    pt = std::make_unique<io::TorchCheckpoint>(weights);
    for (const auto& t : pt->tensors()) source.entries.emplace_back(t.name, t.shape);
    source.load = [&pt](const std::string& name, c10::ScalarType type, c10::Device dev) {
      return pt->load(name, type, dev);
    };
  }

  Florence2Net net{nullptr};
  {
    nn::SkipInitGuard skip_init;  // every value comes from the file
    net = Florence2Net(config);
  }
  net->to(device, dtype);
  std::map<std::string, at::Tensor> slots;
  for (const auto& p : net->named_parameters(true)) slots[p.key()] = p.value();
  for (const auto& b : net->named_buffers(true)) slots[b.key()] = b.value();

  nn::LoadReport report;
  std::set<std::string> filled;
  bool has_logits_bias = false;
  torch::NoGradGuard no_grad;
  for (const auto& [name, shape] : source.entries) {
    const Florence2KeyTarget target = florence2_key_target(name, config.layout);
    if (target.module_key.empty()) continue;
    auto slot = slots.find(target.module_key);
    if (slot == slots.end()) {
      report.unexpected.push_back(name);
      continue;
    }
    if (filled.count(target.module_key)) continue;  // a tied copy of a table already read
    std::vector<int64_t> want = slot->second.sizes().vec();
    if (target.transposed && want.size() == 2) std::swap(want[0], want[1]);
    if (shape != want) {
      report.misshaped.push_back(name + " " + nn::shape_str(shape) + " (model " + nn::shape_str(want) + ")");
      continue;
    }
    at::Tensor value = source.load(name, slot->second.scalar_type(), slot->second.device());
    if (target.transposed) value = value.t();
    slot->second.copy_(value);
    filled.insert(target.module_key);
    if (target.module_key == "language_model.final_logits_bias") has_logits_bias = true;
  }
  for (const auto& [key, tensor] : slots) {
    if (filled.count(key)) continue;
    // The native port's lm_head has no bias: without the buffer in the file it adds nothing.
    if (key == "language_model.final_logits_bias" && !has_logits_bias) {
      tensor.zero_();
      continue;
    }
    report.missing.push_back(key);
  }
  LS_CHECK(report.empty(), weights.string(), ": does not match ", config_path.string(), " (", report.summary(),
           "); check that the file is complete and comes with this config.json");
  net->eval();
  return Florence2Model{dir, config, net, load_florence2_tokenizer(dir, config.layout), read_florence2_pixels(dir)};
}

}  // namespace ls::caption
