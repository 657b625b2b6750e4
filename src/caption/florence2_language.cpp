#include "caption/florence2_language.h"

#include <cmath>

#include <torch/torch.h>

#include "caption/tagger_net.h"
#include "core/error.h"

namespace ls::caption {

namespace {

// BartEncoderLayer's guard against fp16 overflow: non-finite activations are clamped to the
// largest half value minus 1000, as transformers does (only in fp16).
at::Tensor bart_clamp_fp16(const at::Tensor& x) {
  if (x.scalar_type() != at::kHalf || at::isfinite(x).all().item<bool>()) return x;
  double limit = 65504.0 - 1000.0;
  return x.clamp(-limit, limit);
}

}  // namespace

void BartCache::select(const at::Tensor& index) {
  for (auto* list : {&self_attn, &cross_attn})
    for (auto& kv : *list) {
      if (kv.k.defined()) kv.k = kv.k.index_select(0, index);
      if (kv.v.defined()) kv.v = kv.v.index_select(0, index);
    }
}

F2TableImpl::F2TableImpl(int64_t rows, int64_t dim) { weight = learned(*this, "weight", {rows, dim}); }

BartAttentionImpl::BartAttentionImpl(int64_t dim, int64_t heads) : heads_(heads) {
  k_proj = register_module("k_proj", nn::Linear(dim, dim));
  v_proj = register_module("v_proj", nn::Linear(dim, dim));
  q_proj = register_module("q_proj", nn::Linear(dim, dim));
  out_proj = register_module("out_proj", nn::Linear(dim, dim));
}

at::Tensor BartAttentionImpl::heads_view(const at::Tensor& x) const {
  auto b = x.size(0), n = x.size(1), c = x.size(2);
  return x.view({b, n, heads_, c / heads_}).transpose(1, 2);  // [B, H, N, D]
}

BartKv BartAttentionImpl::project_kv(const at::Tensor& source) {
  return {heads_view(k_proj(source)), heads_view(v_proj(source))};
}

at::Tensor BartAttentionImpl::attend(const at::Tensor& x, const BartKv& kv) {
  auto b = x.size(0), n = x.size(1), c = x.size(2);
  auto q = heads_view(q_proj(x));
  // softmax(q kᵀ · D^-1/2) v, BART's scaling; no mask (all encoder positions are real tokens).
  auto out = at::scaled_dot_product_attention(q, kv.k, kv.v);  // [B, H, N, D]
  return out_proj(out.transpose(1, 2).reshape({b, n, c}));
}

at::Tensor BartAttentionImpl::forward(const at::Tensor& x, bool causal, BartKv* cache) {
  auto b = x.size(0), n = x.size(1), c = x.size(2);
  BartKv kv = project_kv(x);
  if (cache) {
    if (cache->k.defined()) {
      kv.k = at::cat({cache->k, kv.k}, 2);
      kv.v = at::cat({cache->v, kv.v}, 2);
    }
    *cache = kv;
  }
  auto q = heads_view(q_proj(x));
  // Causal only among new positions: with a cache the new ones come after every cached one, and
  // the decoder feeds either the whole prefix at once (no cache yet) or one position per step.
  bool is_causal = causal && n > 1;
  LS_CHECK(!is_causal || kv.k.size(2) == n, "florence2: a multi-position decoder step after cached positions is not supported");
  auto out = at::scaled_dot_product_attention(q, kv.k, kv.v, {}, 0.0, is_causal);
  return out_proj(out.transpose(1, 2).reshape({b, n, c}));
}

BartEncoderLayerImpl::BartEncoderLayerImpl(int64_t dim, int64_t heads, int64_t ffn) {
  self_attn = register_module("self_attn", BartAttention(dim, heads));
  self_attn_layer_norm = register_module("self_attn_layer_norm", nn::LayerNorm(dim));
  fc1 = register_module("fc1", nn::Linear(dim, ffn));
  fc2 = register_module("fc2", nn::Linear(ffn, dim));
  final_layer_norm = register_module("final_layer_norm", nn::LayerNorm(dim));
}

at::Tensor BartEncoderLayerImpl::forward(const at::Tensor& x) {
  // Post-LayerNorm: norm(x + f(x)).
  auto h = self_attn_layer_norm(x + self_attn->forward(x, false));
  h = final_layer_norm(h + fc2(at::gelu(fc1(h))));
  return bart_clamp_fp16(h);
}

BartDecoderLayerImpl::BartDecoderLayerImpl(int64_t dim, int64_t heads, int64_t ffn) {
  self_attn = register_module("self_attn", BartAttention(dim, heads));
  self_attn_layer_norm = register_module("self_attn_layer_norm", nn::LayerNorm(dim));
  encoder_attn = register_module("encoder_attn", BartAttention(dim, heads));
  encoder_attn_layer_norm = register_module("encoder_attn_layer_norm", nn::LayerNorm(dim));
  fc1 = register_module("fc1", nn::Linear(dim, ffn));
  fc2 = register_module("fc2", nn::Linear(ffn, dim));
  final_layer_norm = register_module("final_layer_norm", nn::LayerNorm(dim));
}

at::Tensor BartDecoderLayerImpl::forward(const at::Tensor& x, BartKv& self_kv, const BartKv& cross_kv, bool causal) {
  auto h = self_attn_layer_norm(x + self_attn->forward(x, causal, &self_kv));
  h = encoder_attn_layer_norm(h + encoder_attn->attend(h, cross_kv));
  return final_layer_norm(h + fc2(at::gelu(fc1(h))));
}

BartPositionsImpl::BartPositionsImpl(int64_t max_positions, int64_t dim) {
  weight = learned(*this, "weight", {max_positions + 2, dim});
}

at::Tensor BartPositionsImpl::forward(int64_t start, int64_t length) {
  LS_CHECK(start + length + 2 <= weight.size(0), "florence2: ", start + length,
           " positions exceed the language model's max_position_embeddings (", weight.size(0) - 2, ")");
  return weight.narrow(0, start + 2, length);
}

BartEncoderImpl::BartEncoderImpl(const Florence2TextConfig& c) {
  embed_positions = register_module("embed_positions", BartPositions(c.max_position_embeddings, c.d_model));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.encoder_layers; ++i)
    layers->push_back(BartEncoderLayer(c.d_model, c.encoder_attention_heads, c.encoder_ffn_dim));
  layernorm_embedding = register_module("layernorm_embedding", nn::LayerNorm(c.d_model));
}

at::Tensor BartEncoderImpl::forward(const at::Tensor& inputs_embeds) {
  auto h = inputs_embeds + embed_positions->forward(0, inputs_embeds.size(1));
  h = layernorm_embedding(h);
  for (auto& layer : *layers) h = layer->as<BartEncoderLayer>()->forward(h);
  return h;
}

BartDecoderImpl::BartDecoderImpl(const Florence2TextConfig& c) {
  embed_positions = register_module("embed_positions", BartPositions(c.max_position_embeddings, c.d_model));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.decoder_layers; ++i)
    layers->push_back(BartDecoderLayer(c.d_model, c.decoder_attention_heads, c.decoder_ffn_dim));
  layernorm_embedding = register_module("layernorm_embedding", nn::LayerNorm(c.d_model));
}

at::Tensor BartDecoderImpl::forward(const at::Tensor& embeds, BartCache& cache) {
  LS_CHECK(static_cast<int64_t>(cache.cross_attn.size()) == static_cast<int64_t>(layers->size()),
           "florence2: decoder called before start_cache");
  if (cache.self_attn.empty()) cache.self_attn.resize(layers->size());
  int64_t t = embeds.size(1);
  auto h = embeds + embed_positions->forward(cache.length, t);
  h = layernorm_embedding(h);
  bool causal = cache.length == 0;
  for (size_t i = 0; i < layers->size(); ++i)
    h = (*layers)[i]->as<BartDecoderLayer>()->forward(h, cache.self_attn[i], cache.cross_attn[i], causal);
  cache.length += t;
  return h;
}

Florence2LanguageImpl::Florence2LanguageImpl(const Florence2TextConfig& c) : config_(c) {
  shared = register_module("shared", F2Table(c.vocab_size, c.d_model));
  encoder = register_module("encoder", BartEncoder(c));
  decoder = register_module("decoder", BartDecoder(c));
  final_logits_bias = register_buffer("final_logits_bias", torch::zeros({1, c.vocab_size}));
}

at::Tensor Florence2LanguageImpl::embed(const at::Tensor& ids) {
  auto e = at::embedding(shared->weight, ids);
  if (config_.scale_embedding) e = e * std::sqrt(static_cast<double>(config_.d_model));
  return e;
}

at::Tensor Florence2LanguageImpl::encode(const at::Tensor& inputs_embeds) { return encoder->forward(inputs_embeds); }

void Florence2LanguageImpl::start_cache(const at::Tensor& encoder_states, BartCache& cache) {
  cache = BartCache{};
  for (auto& layer : *decoder->layers)
    cache.cross_attn.push_back(layer->as<BartDecoderLayer>()->encoder_attn->project_kv(encoder_states));
}

at::Tensor Florence2LanguageImpl::decode(const at::Tensor& ids, BartCache& cache) {
  auto h = decoder->forward(embed(ids), cache);          // [B, T, C]
  return at::linear(h, shared->weight) + final_logits_bias;  // [B, T, vocab]
}

}  // namespace ls::caption
