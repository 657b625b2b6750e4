#include "caption/florence2_generate.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "core/error.h"

namespace ls::caption {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// The processors transformers builds from Florence-2's generation settings, in its order:
// NoRepeatNGram, ForcedBOS, ForcedEOS. `sequences` [R, cur_len] are the rows' tokens so far
// (decoder start first), `scores` [R, V] float32 (logits for greedy, log-probs for beams).
struct F2gProcessors {
  int64_t ngram = 3, bos = 0, eos = 2, max_length = 0;

  at::Tensor operator()(const at::Tensor& sequences, at::Tensor scores) const {
    int64_t cur_len = sequences.size(1);
    if (ngram > 0 && cur_len >= ngram) {
      // A window of `ngram` tokens whose first ngram-1 equal the last ngram-1 tokens bans its
      // last token (the window ending at the current token never matches itself).
      auto prefix = sequences.narrow(1, cur_len + 1 - ngram, ngram - 1);
      auto windows = sequences.unfold(1, ngram, 1);                      // [R, W, n]
      auto matches = (windows.narrow(2, 0, ngram - 1) == prefix.unsqueeze(1)).all(-1);  // [R, W]
      int64_t vocab = scores.size(1);
      auto banned = at::zeros({scores.size(0), vocab + 1}, scores.options().dtype(at::kBool));
      auto last = windows.select(2, ngram - 1).clamp_max(vocab);
      banned.scatter_(1, at::where(matches, last, at::full_like(last, vocab)).to(scores.device()), true);
      scores = scores.masked_fill(banned.narrow(1, 0, vocab), kNegInf);
    }
    if (bos >= 0 && cur_len == 1) {
      scores = at::full_like(scores, kNegInf);
      scores.select(1, bos).fill_(0);
    }
    if (eos >= 0 && cur_len == max_length - 1) {
      scores = at::full_like(scores, kNegInf);
      scores.select(1, eos).fill_(0);
    }
    return scores;
  }
};

// The last position's logits as float32 (transformers copies them to float32 before processing).
at::Tensor f2g_step(Florence2LanguageImpl& lm, const at::Tensor& ids, BartCache& cache) {
  auto logits = lm.decode(ids, cache);  // [R, T, V]
  return logits.select(1, logits.size(1) - 1).to(at::kFloat);
}

at::Tensor f2g_greedy(Florence2LanguageImpl& lm, const at::Tensor& encoder_states, const Florence2GenerateOptions& o,
                      const F2gProcessors& process) {
  const auto& c = lm.config();
  int64_t batch = encoder_states.size(0);
  auto device = encoder_states.device();
  BartCache cache;
  lm.start_cache(encoder_states, cache);
  auto sequences = at::full({batch, 1}, c.decoder_start_token_id, at::TensorOptions().dtype(at::kLong).device(device));
  auto unfinished = at::ones({batch}, sequences.options());
  at::Tensor next_input = sequences;
  for (int64_t cur_len = 1; cur_len < process.max_length; ++cur_len) {
    auto scores = process(sequences, f2g_step(lm, next_input, cache));
    auto next = scores.argmax(-1);
    next = next * unfinished + c.pad_token_id * (1 - unfinished);
    sequences = at::cat({sequences, next.unsqueeze(1)}, 1);
    bool at_max = cur_len + 1 >= process.max_length;
    unfinished = unfinished * (next != c.eos_token_id).to(at::kLong) * (at_max ? 0 : 1);
    if (o.on_step) o.on_step(cur_len);
    if (unfinished.max().item<int64_t>() == 0) break;
    next_input = next.unsqueeze(1);
  }
  return sequences.cpu();
}

// [B, beams, ...] gathered along dim 1 by indices [B, k] (transformers' _gather_beams).
at::Tensor f2g_gather(const at::Tensor& tensor, at::Tensor indices) {
  while (indices.dim() < tensor.dim()) indices = indices.unsqueeze(-1);
  return at::take_along_dim(tensor, indices, 1);
}

at::Tensor f2g_beam(Florence2LanguageImpl& lm, const at::Tensor& encoder_states, const Florence2GenerateOptions& o,
                    const F2gProcessors& process) {
  const auto& c = lm.config();
  const int64_t batch = encoder_states.size(0), nb = o.num_beams, prompt_len = 1;
  const int64_t max_length = process.max_length, keep = 2 * nb;  // one EOS id: max(2, 1 + 1) * beams
  const double lp = o.length_penalty;
  auto device = encoder_states.device();
  auto longs = at::TensorOptions().dtype(at::kLong).device(device);
  auto floats = at::TensorOptions().dtype(at::kFloat).device(device);
  auto bools = at::TensorOptions().dtype(at::kBool).device(device);

  auto top_num_beam_mask = at::cat({at::ones({nb}, bools), at::zeros({keep - nb}, bools)});
  int64_t fill = c.pad_token_id != 0 ? c.pad_token_id : c.eos_token_id;  // `pad or eos`
  auto running_sequences = at::full({batch, nb, max_length}, fill, longs);
  running_sequences.select(2, 0).fill_(c.decoder_start_token_id);
  auto sequences = running_sequences.clone();
  auto running_beam_scores = at::zeros({batch, nb}, floats);
  running_beam_scores.narrow(1, 1, nb - 1).fill_(-1e9);
  auto beam_scores = at::full({batch, nb}, -1e9, floats);
  auto is_sent_finished = at::zeros({batch, nb}, bools);
  auto heuristic_unsatisfied = at::ones({batch, 1}, bools);
  auto running_beam_indices = at::full({batch, nb, max_length - prompt_len}, -1, longs.dtype(at::kInt));
  auto beam_indices = running_beam_indices.clone();
  auto batch_offset = at::arange(batch, longs).view({-1, 1}) * nb;

  BartCache cache;
  lm.start_cache(encoder_states.repeat_interleave(nb, 0), cache);
  int64_t cur_len = 1;
  auto flat_running = running_sequences.narrow(2, 0, cur_len).reshape({batch * nb, cur_len});
  at::Tensor next_input = flat_running;
  while (true) {
    auto log_probs = at::log_softmax(f2g_step(lm, next_input, cache), -1);
    log_probs = process(flat_running, log_probs);
    int64_t vocab = log_probs.size(1);
    log_probs = (log_probs.view({batch, nb, vocab}) + running_beam_scores.unsqueeze(-1)).reshape({batch, nb * vocab});

    // _get_top_k_continuations
    auto [topk_log_probs, topk_indices] = at::topk(log_probs, keep);
    auto topk_current_beam = topk_indices.div(vocab, "floor");
    auto topk_running_beam_indices = f2g_gather(running_beam_indices, topk_current_beam);
    auto topk_running_sequences = f2g_gather(running_sequences, topk_current_beam);
    auto topk_ids = topk_indices.remainder(vocab);
    topk_running_sequences.select(2, cur_len).copy_(topk_ids);
    topk_running_beam_indices.select(2, cur_len - prompt_len).copy_(topk_current_beam + batch_offset);

    // Stopping criteria of each candidate: max length or EOS.
    auto hits = topk_ids == c.eos_token_id;
    if (cur_len + 1 >= max_length) hits.fill_(true);

    // _get_running_beams_for_next_iteration
    auto topk_running_log_probs = topk_log_probs + hits.to(at::kFloat) * -1.0e9;
    auto next_topk = std::get<1>(at::topk(topk_running_log_probs, nb));
    running_sequences = f2g_gather(topk_running_sequences, next_topk);
    running_beam_scores = f2g_gather(topk_running_log_probs, next_topk);
    running_beam_indices = f2g_gather(topk_running_beam_indices, next_topk);

    // _update_finished_beams
    auto just_finished = hits.logical_and(top_num_beam_mask.unsqueeze(0));
    auto scores = topk_log_probs / std::pow(static_cast<double>(cur_len + 1 - prompt_len), lp);
    auto batch_full = is_sent_finished.all(-1, true).logical_and(at::full({}, o.early_stopping, bools));
    scores = scores + batch_full.to(at::kFloat) * -1.0e9;
    scores = scores + heuristic_unsatisfied.logical_not().to(at::kFloat) * -1.0e9;
    scores = scores + just_finished.logical_not() * -1.0e9;
    auto merged_sequences = at::cat({sequences, topk_running_sequences}, 1);
    auto merged_scores = at::cat({beam_scores, scores}, 1);
    auto merged_beam_indices = at::cat({beam_indices, topk_running_beam_indices}, 1);
    auto merged_finished = at::cat({is_sent_finished, just_finished}, 1);
    auto top_merged = std::get<1>(at::topk(merged_scores, nb));
    sequences = f2g_gather(merged_sequences, top_merged);
    beam_scores = f2g_gather(merged_scores, top_merged);
    beam_indices = f2g_gather(merged_beam_indices, top_merged);
    is_sent_finished = f2g_gather(merged_finished, top_merged);

    // Reorder the self-attention cache to the surviving beams (the cross-attention keys are the
    // same for every beam of an image and never move between images).
    auto beam_idx = running_beam_indices.select(2, cur_len - prompt_len).reshape({batch * nb}).to(at::kLong);
    for (auto& kv : cache.self_attn) {
      kv.k = kv.k.index_select(0, beam_idx);
      kv.v = kv.v.index_select(0, beam_idx);
    }
    if (o.on_step) o.on_step(cur_len);
    cur_len += 1;

    // _check_early_stop_heuristic (early_stopping true or false: the current length)
    auto best_possible = running_beam_scores.narrow(1, 0, 1) / std::pow(static_cast<double>(cur_len - prompt_len), lp);
    auto worst_finished = at::where(is_sent_finished, std::get<0>(beam_scores.min(1, true)), at::full({}, -1.0e9, floats));
    heuristic_unsatisfied = heuristic_unsatisfied.logical_and((best_possible > worst_finished).any(-1, true));

    bool improvement_possible = heuristic_unsatisfied.any().item<bool>();
    bool exists_open_beam = !(is_sent_finished.all().item<bool>() && o.early_stopping);
    bool valid_continuations = !hits.all().item<bool>();
    if (!(improvement_possible && exists_open_beam && valid_continuations)) break;
    flat_running = running_sequences.narrow(2, 0, cur_len).reshape({batch * nb, cur_len});
    next_input = flat_running.narrow(1, cur_len - 1, 1);
  }
  auto best = sequences.select(1, 0);                                   // [B, max_length]
  auto generated = (beam_indices.select(1, 0) + 1).to(at::kBool).sum(1);  // [B]
  int64_t length = prompt_len + generated.max().item<int64_t>();
  return best.narrow(1, 0, length).cpu();
}

}  // namespace

Florence2GenerateOptions Florence2GenerateOptions::from(const Florence2TextConfig& c) {
  Florence2GenerateOptions o;
  o.num_beams = c.num_beams;
  o.no_repeat_ngram_size = c.no_repeat_ngram_size;
  o.early_stopping = c.early_stopping;
  o.length_penalty = c.length_penalty;
  return o;
}

at::Tensor florence2_generate(Florence2LanguageImpl& lm, const at::Tensor& encoder_states,
                              const Florence2GenerateOptions& options) {
  LS_CHECK(options.max_new_tokens >= 1, "--max_new_tokens must be at least 1");
  // The last step feeds position max_new_tokens - 1 (the start token is position 0).
  LS_CHECK(options.max_new_tokens <= lm.config().max_position_embeddings, "--max_new_tokens ", options.max_new_tokens,
           " is more than the decoder's max_position_embeddings (", lm.config().max_position_embeddings,
           ", config.json); lower it");
  LS_CHECK(options.num_beams >= 1, "--num_beams must be at least 1");
  const auto& c = lm.config();
  F2gProcessors process;
  process.ngram = options.no_repeat_ngram_size;
  process.bos = c.forced_bos_token_id;
  process.eos = c.forced_eos_token_id;
  process.max_length = 1 + options.max_new_tokens;  // the decoder start token is the prompt
  torch::NoGradGuard no_grad;
  return options.num_beams == 1 ? f2g_greedy(lm, encoder_states, options, process)
                                : f2g_beam(lm, encoder_states, options, process);
}

}  // namespace ls::caption
