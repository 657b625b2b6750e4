// A Florence-2 model folder: config.json, the weights (Microsoft's pytorch_model.bin or the
// native transformers port's model.safetensors), the tokenizer (vocab.json, merges.txt) and
// preprocessor_config.json, as the hub snapshots of microsoft/Florence-2-{base,large}[-ft] and
// of the converted checkpoints lay them out.
#pragma once

#include <filesystem>
#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "caption/florence2_model.h"
#include "caption/florence2_processor.h"
#include "text/bart_tokenizer.h"

namespace ls::caption {

/// Where a file tensor goes in Florence2Net: its parameter / buffer name ("" = nothing: a layer
/// Florence-2 does not use, such as DaViT's classification head), and whether it is stored
/// transposed (Microsoft's image_projection is [C, d_model], used as x @ W).
struct Florence2KeyTarget {
  std::string module_key;
  bool transposed = false;
};

/// The file key's target for a layout: the native port's names are the module's under "model."
/// (lm_head.weight is the tied token table); Microsoft's differ in the vision tower
/// (convs.N.proj, conv1.fn.dw, window_attn.norm / .fn, ffn.norm / .fn.net) and the projector
/// (image_pos_embed, top-level image_projection), and keep tied copies of the token table
/// (shared, encoder/decoder embed_tokens, lm_head), which all map to language_model.shared.weight.
Florence2KeyTarget florence2_key_target(const std::string& file_key, Florence2Layout layout);

struct Florence2Model {
  std::filesystem::path dir;
  Florence2Config config;
  Florence2Net net{nullptr};  // eval mode, on the device in the dtype
  text::BartTokenizer tokenizer;
  Florence2Pixels pixels;
};

/// Loads a model folder. One-line errors name the file and what to do: a missing file, a config
/// that is not Florence-2's, a pickle that is not a plain state dict, every missing / mis-shaped /
/// unexpected tensor at once.
Florence2Model load_florence2(const std::filesystem::path& dir, c10::Device device, c10::ScalarType dtype);

/// The tokenizer alone (vocab.json, merges.txt and the processor's added tokens).
text::BartTokenizer load_florence2_tokenizer(const std::filesystem::path& dir, Florence2Layout layout);

}  // namespace ls::caption
