// BART's byte-level BPE tokenizer as Florence-2 runs it under transformers 5.23 / tokenizers 0.23
// (BartTokenizer = RobertaTokenizer on the tokenizers backend; Microsoft's processing_florence2.py
// adds 1,024 special tokens): added tokens split out first (tokenizers added_vocabulary.rs), the
// GPT-2 pre-token regex and byte mapping (pre_tokenizers/byte_level.rs), BPE merges by rank
// (models/bpe/word.rs), <s> … </s> around (RobertaProcessing), and the ByteLevel decoder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ls::text {

struct BartVocab;

/// The tokens Florence2Processor.__init__ adds in this order: <od> </od> <ocr> </ocr>,
/// <loc_0> … <loc_999>, then <cap> … <and> (with the original's spelling "<region_to_desciption>").
std::vector<std::string> florence2_added_tokens();

class BartTokenizer {
 public:
  /// Loads `folder` (vocab.json + merges.txt, or tokenizer.json, with tokenizer_config.json and
  /// the other files transformers reads for added tokens; see load_bart_vocab), then adds
  /// `added_tokens` as special tokens (no strip, not normalized), as add_special_tokens does: a
  /// token already known keeps its id, a new one gets the next id (the vocabulary's size V, then
  /// V+1, …). Throws ls::Error naming the file on any problem.
  static BartTokenizer load(const std::filesystem::path& folder, const std::vector<std::string>& added_tokens);

  /// `tokenizer(text, add_special_tokens=...)["input_ids"]`: <s> + ids + </s> when add_special_tokens.
  /// Invalid UTF-8 in `text` is read as U+FFFD first (Python strings cannot hold it).
  std::vector<int64_t> encode(std::string_view text, bool add_special_tokens = true) const;
  /// `tokenizer.decode(ids, skip_special_tokens=...)`: byte-level decoding of the concatenated
  /// tokens, invalid UTF-8 -> U+FFFD, no clean-up of spaces (transformers 5.23 never cleans BPE
  /// output). Ids the vocabulary lacks are dropped as the reference drops them; a negative id
  /// throws ls::Error.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;

  /// The GPT-2 pre-tokens of `text` (no added-token splitting), UTF-8, for tests and debugging.
  static std::vector<std::string> pretokenize(std::string_view text);

  /// Id of a token's text (added tokens, then vocab.json: "Ġdog", "<loc_0>"), -1 when unknown.
  int64_t token_id(std::string_view token) const;
  /// The text of an id as the vocabulary spells it; throws ls::Error when the id has none.
  const std::string& token_text(int64_t id) const;
  /// Whether the id is a special token (skipped by decode with skip_special_tokens).
  bool is_special(int64_t id) const;
  /// `len(tokenizer)`: vocab.json's entries plus the added tokens it lacks (51,289 for Florence-2).
  int64_t vocab_size() const;

  int64_t bos_id() const;  // <s>: 0 in BART's vocabulary
  int64_t pad_id() const;  // <pad>: 1
  int64_t eos_id() const;  // </s>: 2
  int64_t unk_id() const;  // <unk>: 3

 private:
  struct State;
  explicit BartTokenizer(std::shared_ptr<State> state);
  void append_segment(std::string_view text, std::vector<int64_t>& out) const;
  void append_bpe(const std::string& piece, std::vector<int64_t>& out) const;
  std::shared_ptr<State> state_;  // shared by copies; the BPE cache inside is thread-safe
};

}  // namespace ls::text
