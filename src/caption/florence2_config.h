// Florence-2's architecture, read from the model folder's config.json in either layout: Microsoft's
// hub snapshot (microsoft/Florence-2-{base,large}[-ft], trust_remote_code: vision_config
// "davit" with dim_embed, image_pos_embed, visual_temporal_embedding; text_config
// "florence2_language") or the native transformers port (transformers/models/florence2/
// configuration_florence2.py: vision_config "florence_vision" with embed_dim; text_config "bart").
// The defaults are Florence-2-base's.
#pragma once

#include <string>
#include <vector>

namespace ls::caption {

/// DaViT (Ding et al. 2022) as Florence-2 configures it, plus the image projection's sizes.
struct Florence2VisionConfig {
  std::vector<int64_t> depths{1, 1, 9, 1};
  std::vector<int64_t> patch_size{7, 3, 3, 3};
  std::vector<int64_t> patch_stride{4, 2, 2, 2};
  std::vector<int64_t> patch_padding{3, 1, 1, 1};
  std::vector<bool> patch_prenorm{false, true, true, true};
  std::vector<int64_t> embed_dim{128, 256, 512, 1024};  // "dim_embed" in Microsoft's config
  std::vector<int64_t> num_heads{4, 8, 16, 32};          // window (spatial) attention heads
  std::vector<int64_t> num_groups{4, 8, 16, 32};         // channel attention groups
  int64_t window_size = 12;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  int64_t projection_dim = 768;            // = the language model's d_model
  int64_t max_temporal_embeddings = 100;   // cosine table rows
  int64_t max_position_embeddings = 50;    // learned 2-D table side ("image_pos_embed.max_pos_embeddings")

  int64_t stages() const { return static_cast<int64_t>(embed_dim.size()); }
  int64_t out_dim() const { return embed_dim.back(); }
};

/// The BART-style encoder-decoder (post-LayerNorm, learned positions offset by 2, GELU).
struct Florence2TextConfig {
  int64_t vocab_size = 51289;
  int64_t d_model = 768;
  int64_t encoder_layers = 6, decoder_layers = 6;
  int64_t encoder_attention_heads = 12, decoder_attention_heads = 12;
  int64_t encoder_ffn_dim = 3072, decoder_ffn_dim = 3072;
  int64_t max_position_embeddings = 1024;
  std::string activation_function = "gelu";
  bool scale_embedding = false;  // token embeddings times sqrt(d_model)
  int64_t bos_token_id = 0, pad_token_id = 1, eos_token_id = 2;
  int64_t decoder_start_token_id = 2;
  int64_t forced_bos_token_id = 0, forced_eos_token_id = 2;
  // Generation defaults the hub's config carries (and lorastudio uses for captions).
  int64_t num_beams = 3;
  int64_t no_repeat_ngram_size = 3;
  bool early_stopping = true;
  double length_penalty = 1.0;
};

enum class Florence2Layout { kMicrosoft, kTransformers };

struct Florence2Config {
  Florence2VisionConfig vision;
  Florence2TextConfig text;
  Florence2Layout layout = Florence2Layout::kMicrosoft;
  int64_t image_token_id = -1;  // transformers layout only (the processor's "<image>" placeholder)

  /// Florence-2-base and -large as the hub publishes them (Microsoft layout).
  static Florence2Config base();
  static Florence2Config large();
};

/// Parses config.json text of either layout; `name_for_errors` is the file's path. Values that
/// would change the computation and are not implemented (another vision model_type, image
/// feature sources other than spatial + temporal average pooling, non-cosine temporal or
/// non-learned 2-D position embeddings, another activation) are refused by name.
Florence2Config parse_florence2_config(const std::string& json_text, const std::string& name_for_errors);
Florence2Config read_florence2_config(const std::string& path);

}  // namespace ls::caption
