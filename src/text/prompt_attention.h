// A1111's prompt syntax for sampling: emphasis "(word)", "(word:1.2)", "[word]", escapes and BREAK
// (AUTOMATIC1111/stable-diffusion-webui modules/prompt_parser.py parse_prompt_attention), and the
// cut of the weighted tokens into 75-token chunks with comma backtracking and BREAK
// (modules/sd_hijack_clip.py tokenize_line, process_tokens). Training uses kohya's rules instead
// (text/prompt_windows.h). Prompt editing "[a:b:0.5]", AND, <lora:...> and embeddings are not here.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/clip_tokenizer.h"
#include "text/prompt_windows.h"

namespace ls::text {

/// A run of prompt text and its emphasis multiplier; BREAK is {"BREAK", -1}.
struct PromptPiece {
  std::string text;  // UTF-8
  double weight = 1.0;
  bool operator==(const PromptPiece& o) const { return text == o.text && weight == o.weight; }
};

/// parse_prompt_attention: "(x)" multiplies by 1.1, "[x]" by 1/1.1, "(x:w)" by w (only when a "("
/// is open; otherwise ":w)" is text), "\(" "\)" "\[" "\]" "\\" are literal, a lone "\" vanishes,
/// brackets left open apply to the end, " BREAK " (a whole word, with the blanks around it) becomes
/// its own piece, and neighbours of equal weight merge. Weights multiply in A1111's order (doubles),
/// so (((house:1.3)) gives 1.5730000000000004. "" -> {{"", 1}}. A weight Python's float() refuses
/// ("(x:1.2.3)", "(x:.)") throws ls::Error, where A1111 fails with ValueError.
std::vector<PromptPiece> parse_prompt_attention(std::string_view prompt);

/// A1111's opts.comma_padding_backtrack default.
inline constexpr int kCommaBacktrack = 20;

/// One 75-token chunk of a prompt (one encoder pass of 77 ids once start/end are added).
struct PromptChunk {
  std::array<int64_t, kWindowBody> ids{};     // prompt tokens, then the end id 49407 up to 75
  std::array<double, kWindowBody> weights{};  // each token's multiplier; 1 on the padding
  int tokens = 0;                             // prompt tokens in ids (the rest is padding)
};

/// tokenize_line: each piece's text is tokenized on its own; tokens fill chunks of 75; when a
/// chunk is full and its last comma is at most comma_backtrack tokens back, the tokens after that
/// comma move to the next chunk (0 disables); a BREAK piece closes the current chunk (even an
/// empty one); the last chunk is closed when it holds tokens or when there is no chunk yet, so ""
/// gives one chunk of padding.
std::vector<PromptChunk> chunk_pieces(const ClipTokenizer& tokenizer, const std::vector<PromptPiece>& pieces,
                                      int comma_backtrack = kCommaBacktrack);
/// chunk_pieces(parse_prompt_attention(prompt)).
std::vector<PromptChunk> chunk_prompt(const ClipTokenizer& tokenizer, std::string_view prompt,
                                      int comma_backtrack = kCommaBacktrack);

/// The 77 ids one encoder sees: start + ids + end, then every id after the first end becomes pad
/// (49407 for SDXL's TE1, where this changes nothing; 0 for TE2, as A1111's process_tokens).
TokenWindow chunk_window(const PromptChunk& chunk, int64_t pad, int64_t start = ClipTokenizer::kStart,
                         int64_t end = ClipTokenizer::kEnd);
/// The 77 multipliers: 1 for start and end, the chunk's weights between.
std::array<double, kWindowTokens> chunk_weights(const PromptChunk& chunk);

}  // namespace ls::text
