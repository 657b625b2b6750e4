// Florence-2's language model: BART's post-LayerNorm encoder-decoder with learned positions offset
// by 2 and exact GELU (transformers/models/bart/modeling_bart.py, which Florence-2's own
// Florence2Language* classes copy), with a key/value cache for generation. Parameter names are
// the checkpoint's under "language_model." (shared, encoder.layers.N.self_attn.k_proj, ...).
#pragma once

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include "caption/florence2_config.h"
#include "nn/layers.h"

namespace ls::caption {

/// One attention layer's cached keys and values, [B, heads, S, head_dim].
struct BartKv {
  at::Tensor k, v;
};

/// The decoder's cache: self-attention keys/values grow by one position per step; the
/// cross-attention ones are computed from the encoder output once.
struct BartCache {
  std::vector<BartKv> self_attn, cross_attn;
  int64_t length = 0;  // decoder positions already cached
  bool empty() const { return self_attn.empty(); }
  /// Keeps rows `index` [B'] of the batch (beam search reordering).
  void select(const at::Tensor& index);
};

class BartAttentionImpl : public torch::nn::Module {
 public:
  BartAttentionImpl(int64_t dim, int64_t heads);
  /// x [B, N, C] attends to itself (kv == nullptr) or to precomputed keys/values.
  /// self-attention with `cache`: the new keys/values are appended to it first.
  at::Tensor forward(const at::Tensor& x, bool causal, BartKv* cache = nullptr);
  at::Tensor attend(const at::Tensor& x, const BartKv& kv);
  BartKv project_kv(const at::Tensor& source) ;  // [B, M, C] -> k, v [B, heads, M, head_dim]

  nn::Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};

 private:
  at::Tensor heads_view(const at::Tensor& x) const;  // [B, N, C] -> [B, H, N, D]
  int64_t heads_;
};
TORCH_MODULE(BartAttention);

class BartEncoderLayerImpl : public torch::nn::Module {
 public:
  BartEncoderLayerImpl(int64_t dim, int64_t heads, int64_t ffn);
  at::Tensor forward(const at::Tensor& x);  // [B, N, C] -> [B, N, C]

  BartAttention self_attn{nullptr};
  nn::LayerNorm self_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(BartEncoderLayer);

class BartDecoderLayerImpl : public torch::nn::Module {
 public:
  BartDecoderLayerImpl(int64_t dim, int64_t heads, int64_t ffn);
  /// x [B, T, C] (the new positions) -> [B, T, C]; self_kv grows by T, cross_kv is the encoder's.
  at::Tensor forward(const at::Tensor& x, BartKv& self_kv, const BartKv& cross_kv, bool causal);

  BartAttention self_attn{nullptr}, encoder_attn{nullptr};
  nn::LayerNorm self_attn_layer_norm{nullptr}, encoder_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(BartDecoderLayer);

/// A lookup table registered as "weight" (torch.nn.Embedding's name).
class F2TableImpl : public torch::nn::Module {
 public:
  F2TableImpl(int64_t rows, int64_t dim);
  at::Tensor weight;  // [rows, dim]
};
TORCH_MODULE(F2Table);

/// BART's learned positions: table [max_positions + 2, C], position p reads row p + 2.
class BartPositionsImpl : public torch::nn::Module {
 public:
  BartPositionsImpl(int64_t max_positions, int64_t dim);
  at::Tensor forward(int64_t start, int64_t length);  // -> [length, C]

  at::Tensor weight;
};
TORCH_MODULE(BartPositions);

class BartEncoderImpl : public torch::nn::Module {
 public:
  explicit BartEncoderImpl(const Florence2TextConfig& c);
  at::Tensor forward(const at::Tensor& inputs_embeds);  // [B, N, C] -> [B, N, C]

  BartPositions embed_positions{nullptr};
  nn::LayerNorm layernorm_embedding{nullptr};
  torch::nn::ModuleList layers;
};
TORCH_MODULE(BartEncoder);

class BartDecoderImpl : public torch::nn::Module {
 public:
  explicit BartDecoderImpl(const Florence2TextConfig& c);
  /// embeds [B, T, C] of the new positions (after the cached ones) -> hidden [B, T, C].
  at::Tensor forward(const at::Tensor& embeds, BartCache& cache);

  BartPositions embed_positions{nullptr};
  nn::LayerNorm layernorm_embedding{nullptr};
  torch::nn::ModuleList layers;
};
TORCH_MODULE(BartDecoder);

class Florence2LanguageImpl : public torch::nn::Module {
 public:
  explicit Florence2LanguageImpl(const Florence2TextConfig& c);

  /// ids [B, N] int64 -> token embeddings [B, N, C] (times sqrt(C) when scale_embedding).
  at::Tensor embed(const at::Tensor& ids);
  /// The encoder over [image features, text embeddings] [B, N, C].
  at::Tensor encode(const at::Tensor& inputs_embeds);
  /// Fills cache.cross_attn from the encoder output (once per generation).
  void start_cache(const at::Tensor& encoder_states, BartCache& cache);
  /// ids [B, T] of the new decoder positions -> logits [B, T, vocab] (float of the model dtype),
  /// tied output projection (shared.weight) plus final_logits_bias.
  at::Tensor decode(const at::Tensor& ids, BartCache& cache);

  const Florence2TextConfig& config() const { return config_; }

  F2Table shared{nullptr};       // "shared.weight" [vocab, C], tied to the output projection
  at::Tensor final_logits_bias;  // buffer [1, vocab]; zeros unless the file has it
  BartEncoder encoder{nullptr};
  BartDecoder decoder{nullptr};

 private:
  Florence2TextConfig config_;
};
TORCH_MODULE(Florence2Language);

}  // namespace ls::caption
