// CLIP's byte-level BPE tokenizer, identical to OpenAI CLIP's SimpleTokenizer
// (openai/CLIP clip/simple_tokenizer.py): ftfy/HTML cleaning, lowercasing, the pre-token regex,
// BPE with "</w>" word ends, and a per-word cache. Both SDXL text encoders use it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ls::text {

struct ClipVocab;

class ClipTokenizer {
 public:
  static constexpr int64_t kStart = 49406;  // <|startoftext|> in CLIP's 49408-id vocabulary
  static constexpr int64_t kEnd = 49407;    // <|endoftext|>

  /// bpe_simple_vocab_16e6.txt.gz (or .txt), a vocab.json with merges.txt beside it, or a folder
  /// holding vocab.json + merges.txt (a diffusers model's tokenizer/). Throws ls::Error.
  static ClipTokenizer from_file(const std::filesystem::path& path);

  /// Body ids of `text` (UTF-8), without start/end.
  std::vector<int64_t> encode(std::string_view text) const;
  /// start + body + end, unpadded.
  std::vector<int64_t> tokenize(std::string_view text) const;
  /// SimpleTokenizer.decode: token texts joined, bytes restored (invalid UTF-8 -> U+FFFD),
  /// "</w>" -> " ". Throws ls::Error for an id outside the vocabulary.
  std::string decode(const std::vector<int64_t>& ids) const;

  /// The pre-tokens CLIP's regex finds in already-cleaned text (for tests and debugging).
  static std::vector<std::u32string> pretokenize(std::u32string_view cleaned);

  int64_t start_id() const;
  int64_t end_id() const;
  int64_t vocab_size() const;
  /// The text of one id ("a</w>", "<|endoftext|>"); throws ls::Error when out of range.
  const std::string& token_text(int64_t id) const;

 private:
  struct State;
  explicit ClipTokenizer(std::shared_ptr<State> state);
  void append_bpe(std::u32string_view word, std::vector<int64_t>& out) const;
  std::shared_ptr<State> state_;  // shared by copies; the word cache inside is thread-safe
};

}  // namespace ls::text
