// CLIP text transformer (both SDXL encoders). References: transformers
// src/transformers/models/clip/modeling_clip.py (CLIPTextTransformer, CLIPEncoderLayer, CLIPAttention),
// open_clip src/open_clip/model.py + transformer.py (text_projection as x @ P, causal attn_mask).
#include "models/clip_text.h"

#include "nn/checkpointing.h"

#include <cmath>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "nn/functional.h"

namespace ls::models {

ClipTextConfig ClipTextConfig::sdxl_te1() { return ClipTextConfig{}; }

ClipTextConfig ClipTextConfig::sdxl_te2() {
  ClipTextConfig c;
  c.width = 1280;
  c.layers = 32;
  c.heads = 20;
  c.mlp_width = 5120;
  c.activation = "gelu";
  c.projection_dim = 1280;
  return c;
}

ClipTextConfig ClipTextConfig::tiny_te1() {
  ClipTextConfig c;
  c.width = 32;
  c.layers = 3;
  c.heads = 2;
  c.mlp_width = 64;
  return c;
}

ClipTextConfig ClipTextConfig::tiny_te2() {
  ClipTextConfig c = sdxl_te2();
  c.width = 32;
  c.layers = 3;
  c.heads = 4;
  c.mlp_width = 128;
  c.projection_dim = 32;
  return c;
}

void ClipTextConfig::validate() const {
  LS_CHECK(vocab_size > 0 && max_positions > 0 && width > 0 && mlp_width > 0,
           "clip text config: vocab_size, max_positions, width and mlp_width must be positive");
  LS_CHECK(layers >= 2, "clip text config: layers must be >= 2 (the penultimate state is used), got ", layers);
  LS_CHECK(heads > 0 && width % heads == 0, "clip text config: width ", width,
           " must be a multiple of heads ", heads);
  LS_CHECK(activation == "quick_gelu" || activation == "gelu", "clip text config: activation '",
           activation, "' is unknown; use quick_gelu or gelu");
  LS_CHECK(projection_dim >= 0, "clip text config: projection_dim must be >= 0, got ", projection_dim);
  LS_CHECK(layer_norm_eps > 0, "clip text config: layer_norm_eps must be > 0");
}

void to_json(nlohmann::json& j, const ClipTextConfig& c) {
  j = nlohmann::json{{"vocab_size", c.vocab_size}, {"max_positions", c.max_positions},
                     {"width", c.width},           {"layers", c.layers},
                     {"heads", c.heads},           {"mlp_width", c.mlp_width},
                     {"activation", c.activation}, {"projection_dim", c.projection_dim},
                     {"layer_norm_eps", c.layer_norm_eps}};
}

void from_json(const nlohmann::json& j, ClipTextConfig& c) {
  LS_CHECK(j.is_object(), "clip text config: expected a JSON object, got ", j.type_name());
  for (const auto& [key, value] : j.items()) {
    try {
      if (key == "vocab_size") value.get_to(c.vocab_size);
      else if (key == "max_positions") value.get_to(c.max_positions);
      else if (key == "width") value.get_to(c.width);
      else if (key == "layers") value.get_to(c.layers);
      else if (key == "heads") value.get_to(c.heads);
      else if (key == "mlp_width") value.get_to(c.mlp_width);
      else if (key == "activation") value.get_to(c.activation);
      else if (key == "projection_dim") value.get_to(c.projection_dim);
      else if (key == "layer_norm_eps") value.get_to(c.layer_norm_eps);
      else LS_FAIL("clip text config: unknown field '", key, "'; remove it (fields: vocab_size, max_positions, "
                   "width, layers, heads, mlp_width, activation, projection_dim, layer_norm_eps)");
    } catch (const nlohmann::json::exception& e) {
      LS_FAIL("clip text config: field '", key, "' has the wrong type (", e.what(), ")");
    }
  }
}

ClipAttentionImpl::ClipAttentionImpl(int64_t width, int64_t heads) : heads_(heads) {
  q_proj = register_module("q_proj", ls::nn::Linear(width, width));
  k_proj = register_module("k_proj", ls::nn::Linear(width, width));
  v_proj = register_module("v_proj", ls::nn::Linear(width, width));
  out_proj = register_module("out_proj", ls::nn::Linear(width, width));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x) {
  // HF scales q by head_dim^-0.5 before q kᵀ; attention() scales the scores: same numbers.
  auto o = ls::nn::attention(q_proj(x), k_proj(x), v_proj(x), heads_, /*causal=*/true);  // [B, N, C]
  return out_proj(o);
}

ClipMlpImpl::ClipMlpImpl(int64_t width, int64_t mlp_width, const std::string& activation)
    : quick_gelu_(activation == "quick_gelu") {
  fc1 = register_module("fc1", ls::nn::Linear(width, mlp_width));
  fc2 = register_module("fc2", ls::nn::Linear(mlp_width, width));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  auto h = fc1(x);  // [B, N, mlp_width]
  h = quick_gelu_ ? ls::nn::quick_gelu(h) : torch::gelu(h);
  return fc2(h);
}

ClipEncoderLayerImpl::ClipEncoderLayerImpl(const ClipTextConfig& config) {
  self_attn = register_module("self_attn", ClipAttention(config.width, config.heads));
  layer_norm1 = register_module("layer_norm1", ls::nn::LayerNorm(config.width, config.layer_norm_eps));
  mlp = register_module("mlp", ClipMlp(config.width, config.mlp_width, config.activation));
  layer_norm2 = register_module("layer_norm2", ls::nn::LayerNorm(config.width, config.layer_norm_eps));
}

torch::Tensor ClipEncoderLayerImpl::forward(const torch::Tensor& x) {
  if (!gradient_checkpointing || !torch::GradMode::is_enabled()) return body(x);
  return nn::checkpoint([this](const std::vector<torch::Tensor>& in) { return body(in[0]); }, {x},
                        nn::has_trainable_parameters(*this));
}

torch::Tensor ClipEncoderLayerImpl::body(const torch::Tensor& x) {
  auto h = x + self_attn(layer_norm1(x));  // [B, N, C]
  return h + mlp(layer_norm2(h));
}

namespace {
// HF's init (normal, std 0.02 tokens / 0.01 positions); uninitialised under SkipInitGuard so a
// full-size model about to be loaded does not draw 100M random numbers.
torch::nn::Embedding make_embedding(int64_t rows, int64_t width, double std) {
  auto w = torch::empty({rows, width});
  if (!ls::nn::SkipInitGuard::active()) w.normal_(0.0, std);
  return torch::nn::Embedding(torch::nn::EmbeddingOptions(rows, width)._weight(w));
}
}  // namespace

ClipTextEmbeddingsImpl::ClipTextEmbeddingsImpl(const ClipTextConfig& config) {
  token_embedding = register_module("token_embedding", make_embedding(config.vocab_size, config.width, 0.02));
  position_embedding =
      register_module("position_embedding", make_embedding(config.max_positions, config.width, 0.01));
}

torch::Tensor ClipTextEmbeddingsImpl::forward(const torch::Tensor& ids) {
  LS_CHECK(ids.dim() == 2, "clip text: token ids must be [batch, length], got ", ids.sizes());
  int64_t n = ids.size(1);
  int64_t max_positions = position_embedding->weight.size(0);
  LS_CHECK(n <= max_positions, "clip text: ", n, " tokens exceed the ", max_positions,
           " positions; split long prompts into windows of ", max_positions);
  auto tok = token_embedding(ids.to(torch::kLong));              // [B, N, C]
  return tok + position_embedding->weight.slice(0, 0, n).unsqueeze(0);  // + [1, N, C]
}

ClipEncoderImpl::ClipEncoderImpl(const ClipTextConfig& config) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.layers; ++i) {
    layer_list.push_back(ClipEncoderLayer(config));
    layers->push_back(layer_list.back());
  }
}

ClipTextTransformerImpl::ClipTextTransformerImpl(const ClipTextConfig& config) {
  embeddings = register_module("embeddings", ClipTextEmbeddings(config));
  encoder = register_module("encoder", ClipEncoder(config));
  final_layer_norm = register_module("final_layer_norm", ls::nn::LayerNorm(config.width, config.layer_norm_eps));
}

ClipTextModelImpl::ClipTextModelImpl(const ClipTextConfig& config) : config_(config) {
  config_.validate();
  text_model = register_module("text_model", ClipTextTransformer(config_));
  if (config_.projection_dim > 0) {
    // open_clip's init: text_projection ~ N(0, width^-0.5), logit_scale = ln(1/0.07).
    auto p = torch::empty({config_.width, config_.projection_dim});
    auto s = torch::empty({});
    if (!ls::nn::SkipInitGuard::active()) {
      p.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(config_.width)));
      s.fill_(std::log(1.0 / 0.07));
    }
    text_projection = register_parameter("text_projection", p);
    logit_scale = register_parameter("logit_scale", s);
  }
}

torch::Tensor ClipTextModelImpl::pool_index(const torch::Tensor& ids) {
  auto max_id = std::get<0>(ids.max(1, /*keepdim=*/true));               // [B, 1]
  auto positions = torch::arange(ids.size(1), ids.options().dtype(torch::kLong)).expand(ids.sizes());
  auto candidates = torch::where(ids == max_id, positions, torch::full_like(positions, ids.size(1)));
  return std::get<0>(candidates.min(1));                                  // [B]
}

ClipTextOutput ClipTextModelImpl::forward(const torch::Tensor& ids, bool penultimate_only) {
  ClipTextOutput out;
  auto x = text_model->embeddings(ids);  // [B, N, C]
  auto& layers = text_model->encoder->layer_list;
  const size_t n_layers = layers.size();
  for (size_t i = 0; i + 1 < n_layers; ++i) x = layers[i]->forward(x);
  out.penultimate = x;  // [B, N, C] hidden_states[layers-1] in HF terms
  if (penultimate_only) return out;
  x = layers[n_layers - 1]->forward(x);
  out.last = text_model->final_layer_norm(x);  // [B, N, C]
  auto rows = torch::arange(ids.size(0), torch::TensorOptions().dtype(torch::kLong).device(ids.device()));
  auto pooled = out.last.index({rows, pool_index(ids).to(ids.device())});  // [B, C]
  out.pooled = text_projection.defined() ? torch::matmul(pooled, text_projection) : pooled;  // [B, P]
  return out;
}

void ClipTextModelImpl::set_gradient_checkpointing(bool enabled) {
  for (const auto& m : modules(/*include_self=*/false))
    if (auto* layer = m->as<ClipEncoderLayerImpl>()) layer->gradient_checkpointing = enabled;
}

}  // namespace ls::models
