// Florence-2 (Xiao et al. 2023) as one module: the DaViT vision tower, the projection of its
// features into the language model's space, and the BART-style encoder-decoder. Submodule names
// are the native transformers port's under "model." (vision_tower, multi_modal_projector,
// language_model); florence2_weights.h maps Microsoft's hub layout onto them.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "caption/florence2_config.h"
#include "caption/florence2_language.h"
#include "caption/florence2_projector.h"
#include "caption/florence2_vision.h"

namespace ls::caption {

class Florence2NetImpl : public torch::nn::Module {
 public:
  explicit Florence2NetImpl(const Florence2Config& config);

  /// pixels [B,3,H,W] (normalised) -> image tokens [B, h*w + 1, d_model].
  at::Tensor image_features(const at::Tensor& pixels);
  /// The language encoder over the image tokens followed by the prompt's token embeddings
  /// (text_ids [B, L] int64, the prompt alone: <s> ... </s>) -> [B, h*w + 1 + L, d_model].
  at::Tensor encode(const at::Tensor& pixels, const at::Tensor& text_ids);
  /// Teacher-forced logits [B, T, vocab] for decoder ids [B, T] after the encoder's states.
  at::Tensor logits(const at::Tensor& encoder_states, const at::Tensor& decoder_ids);

  const Florence2Config& config() const { return config_; }

  Florence2Vision vision_tower{nullptr};
  Florence2Projector multi_modal_projector{nullptr};
  Florence2Language language_model{nullptr};

 private:
  Florence2Config config_;
};
TORCH_MODULE(Florence2Net);

}  // namespace ls::caption
