// The files behind BART's byte-level BPE tokenizer as transformers 5.23 loads them for Florence-2
// (transformers tokenization_utils_base.py from_pretrained + tokenization_utils_tokenizers.py
// TokenizersBackend, models/roberta/tokenization_roberta.py, which BartTokenizer aliases): the BPE
// vocabulary and merges, and the added tokens the folder's configuration declares, with their flags.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

namespace ls::text {

/// One added token with the flags of tokenizers' AddedToken.
struct BartAddedToken {
  std::string content;
  bool single_word = false;  // match only where no word character touches it
  bool lstrip = false;       // swallow the whitespace on its left
  bool rstrip = false;       // swallow the whitespace on its right
  bool normalized = false;   // matched in the second pass (after the non-normalized tokens)
  bool special = true;       // skipped by decode(skip_special_tokens = true)
};

struct BartVocab {
  struct Merge {
    int32_t rank;
    int32_t merged;
  };

  std::unordered_map<std::string, int32_t> ids;  // vocab.json: token text -> id
  std::vector<std::string> tokens;               // id -> token text; "" where present[id] is 0
  std::vector<uint8_t> present;                  // whether vocab.json has the id
  std::unordered_map<uint64_t, Merge> merges;    // key: (uint64(left) << 32) | right
  std::array<int32_t, 256> byte_ids{};           // id of byte b's symbol, -1 when vocab.json lacks it
  /// Added tokens declared by the folder's configuration, in the order the reference adds them.
  std::vector<BartAddedToken> config_tokens;
  std::string cls_token = "<s>";   // the post-processor's start and end (RobertaProcessing)
  std::string sep_token = "</s>";
  std::string bos_token = "<s>", eos_token = "</s>", pad_token = "<pad>", unk_token = "<unk>";
  bool add_prefix_space = false;      // tokenizer_config.json "add_prefix_space"
  bool split_special_tokens = false;  // tokenizer_config.json "split_special_tokens"
  std::filesystem::path source;       // the file the vocabulary came from, for messages

  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
};

/// Reads a tokenizer folder: the vocabulary and merges from tokenizer.json's model when that file
/// exists (as the reference does for BartTokenizer), else from vocab.json + merges.txt; the added
/// tokens from tokenizer_config.json's added_tokens_decoder, or when it has none from
/// special_tokens_map.json, added_tokens.json and tokenizer.json's added_tokens (the reference's
/// legacy path); BART's named specials (<s> </s> <unk> <pad> <mask>) unless declared. Throws
/// ls::Error naming the file on any problem.
BartVocab load_bart_vocab(const std::filesystem::path& folder);

}  // namespace ls::text
