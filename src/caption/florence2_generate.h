// Florence-2's decoding: greedy and beam search as transformers 5.23's GenerationMixin runs them
// for this model (generation/utils.py _sample and the vectorised _beam_search with
// _get_top_k_continuations, _update_finished_beams, _check_early_stop_heuristic), with the
// logits processors its config enables (NoRepeatNGram, ForcedBOS, ForcedEOS) and a KV cache.
// Same arithmetic in the same order, so ids are identical to the reference's, not just close.
#pragma once

#include <functional>

#include <ATen/core/Tensor.h>

#include "caption/florence2_language.h"

namespace ls::caption {

struct Florence2GenerateOptions {
  int64_t max_new_tokens = 1024;
  int64_t num_beams = 3;  // 1 = greedy
  int64_t no_repeat_ngram_size = 3;
  bool early_stopping = true;
  double length_penalty = 1.0;
  /// Called after each decoding step with the number of steps done (progress bars).
  std::function<void(int64_t)> on_step;

  /// The model config's generation settings (num_beams, no_repeat_ngram_size, ...).
  static Florence2GenerateOptions from(const Florence2TextConfig& c);
};

/// encoder_states [B, N, C] -> ids [B, T] int64 on CPU: the decoder start token, then the
/// generated tokens, rows shorter than the longest padded with the pad id (as transformers).
at::Tensor florence2_generate(Florence2LanguageImpl& lm, const at::Tensor& encoder_states,
                              const Florence2GenerateOptions& options);

}  // namespace ls::caption
