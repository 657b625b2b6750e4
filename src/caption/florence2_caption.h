// Captions for a batch of images with a loaded Florence-2: the task's prompt tokenised once,
// the images encoded with it, generation (beam search or greedy), the decoded text cleaned.
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "caption/florence2_generate.h"
#include "caption/florence2_weights.h"

namespace ls::caption {

struct Florence2CaptionOptions {
  std::string task = "<DETAILED_CAPTION>";
  Florence2GenerateOptions generate;
  std::vector<std::string> strip_phrases;  // empty: none removed
};

/// The prompt's ids (<s> prompt </s>) repeated for `batch` rows: [batch, L] int64 CPU.
at::Tensor florence2_prompt_ids(const text::BartTokenizer& tokenizer, const std::string& task, int64_t batch);

/// pixels [B, 3, H, W] float32 (any device; moved to the model's) -> one caption per image.
std::vector<std::string> florence2_captions(Florence2Model& model, const at::Tensor& pixels,
                                            const Florence2CaptionOptions& options);

/// The texts of generated ids [B, T] (special tokens kept, as the processor decodes them).
std::vector<std::string> florence2_decode(const text::BartTokenizer& tokenizer, const at::Tensor& ids);

}  // namespace ls::caption
