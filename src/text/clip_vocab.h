// The byte-level BPE vocabulary of CLIP's tokenizer, loaded from OpenAI's merges file
// (bpe_simple_vocab_16e6.txt.gz, or the same text uncompressed) as openai/CLIP
// clip/simple_tokenizer.py builds it, or from a Hugging Face vocab.json + merges.txt pair
// (transformers CLIPTokenizer; the tokenizer/ folder of a diffusers SDXL model).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

namespace ls::text {

/// bytes_to_unicode(): the printable stand-in character for each byte value.
const std::array<char32_t, 256>& clip_byte_chars();
/// Its inverse: the byte value of each stand-in character (all below U+0144), -1 elsewhere.
/// Shared by every byte-level BPE (CLIP, BART).
const std::array<int16_t, 0x144>& clip_char_bytes();

struct ClipVocab {
  /// One merge rule: the pair (left id, right id) becomes `merged` with priority `rank`
  /// (lower merges first).
  struct Merge {
    int32_t rank;
    int32_t merged;
  };

  std::vector<std::string> tokens;                  // id -> token text (UTF-8), "" for unused ids
  std::unordered_map<std::string, int32_t> ids;     // token text -> id
  std::array<int32_t, 256> byte_ids{};              // id of the symbol for byte b
  std::array<int32_t, 256> byte_end_ids{};          // id of that symbol + "</w>" (word end)
  std::unordered_map<uint64_t, Merge> merges;       // key: (uint64(left) << 32) | right
  int32_t start_id = -1;                            // "<|startoftext|>"
  int32_t end_id = -1;                              // "<|endoftext|>"
  std::filesystem::path source;                     // for error messages

  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
};

/// Merges file (.txt.gz or .txt: a header line, then "left right" per line; CLIP uses the first
/// 48894 merges, giving 49408 ids), a vocab.json with merges.txt beside it, or a folder that
/// holds vocab.json + merges.txt. Throws ls::Error naming the file on any problem.
ClipVocab load_clip_vocab(const std::filesystem::path& path);

}  // namespace ls::text
