#include "caption/florence2_model.h"

#include <torch/torch.h>

#include "core/error.h"

namespace ls::caption {

Florence2NetImpl::Florence2NetImpl(const Florence2Config& config) : config_(config) {
  LS_CHECK(config.vision.projection_dim == config.text.d_model, "florence2: the image projection gives ",
           config.vision.projection_dim, " channels but the language model's d_model is ", config.text.d_model);
  vision_tower = register_module("vision_tower", Florence2Vision(config.vision));
  multi_modal_projector = register_module("multi_modal_projector", Florence2Projector(config.vision));
  language_model = register_module("language_model", Florence2Language(config.text));
}

at::Tensor Florence2NetImpl::image_features(const at::Tensor& pixels) {
  return multi_modal_projector(vision_tower(pixels));
}

at::Tensor Florence2NetImpl::encode(const at::Tensor& pixels, const at::Tensor& text_ids) {
  LS_CHECK(pixels.size(0) == text_ids.size(0), "florence2: ", pixels.size(0), " images but ", text_ids.size(0),
           " prompts");
  // The image tokens take the place of the native port's <image> placeholders, which come first:
  // the same sequence Microsoft's _merge_input_ids_with_image_features builds (no scaling, no mask:
  // every prompt of a batch has the same length).
  auto image = image_features(pixels);
  const int64_t positions = image.size(1) + text_ids.size(1);
  LS_CHECK(positions <= config_.text.max_position_embeddings, "florence2: ", image.size(1), " image tokens (",
           pixels.size(2), "x", pixels.size(3), " pixels) and a ", text_ids.size(1), "-token prompt make ", positions,
           " encoder positions, more than config.json's max_position_embeddings (",
           config_.text.max_position_embeddings, "); preprocessor_config.json's size does not fit this model");
  auto text = language_model->embed(text_ids.to(pixels.device()));
  return language_model->encode(at::cat({image.to(text.scalar_type()), text}, 1));
}

at::Tensor Florence2NetImpl::logits(const at::Tensor& encoder_states, const at::Tensor& decoder_ids) {
  BartCache cache;
  language_model->start_cache(encoder_states, cache);
  return language_model->decode(decoder_ids.to(encoder_states.device()), cache);
}

}  // namespace ls::caption
