// CLIP's tokenizer (openai/CLIP clip/simple_tokenizer.py): clean, split with CLIP's regex,
// byte-encode each piece and apply BPE merges in rank order, caching the result per piece.
#include "text/clip_tokenizer.h"

#include <climits>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "core/error.h"
#include "text/clip_vocab.h"
#include "text/text_clean.h"
#include "text/unicode.h"

namespace ls::text {
namespace {

// CLIP keeps every word it has seen; a cap bounds memory over endless caption streams without
// changing any result.
constexpr size_t kMaxCachedWords = 1 << 18;

// Case-insensitive comparison as the `regex` module's IGNORECASE does it for the ASCII letters
// of CLIP's pattern (simple case folding): besides upper case, U+017F LONG S folds to 's'.
bool folds_to(char32_t c, char p) {
  auto pc = static_cast<char32_t>(p);
  if (c == pc) return true;
  if (p >= 'a' && p <= 'z' && c == pc - 32) return true;
  return p == 's' && c == 0x17F;
}

size_t match_literal(std::u32string_view t, size_t i, std::string_view pattern) {
  if (t.size() - i < pattern.size()) return 0;
  for (size_t k = 0; k < pattern.size(); ++k)
    if (!folds_to(t[i + k], pattern[k])) return 0;
  return pattern.size();
}

// Under IGNORECASE, U+0345 COMBINING GREEK YPOGEGRAMMENI (which folds to iota) matches neither
// [\p{L}] nor [^\s\p{L}\p{N}] in the `regex` module, so findall drops it.
bool is_other(char32_t c) { return !is_white_space(c) && !is_letter(c) && !is_number(c) && c != 0x345; }

struct Span {
  size_t begin, size;
};

// re.findall(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
// [^\s\p{L}\p{N}]+", text, re.IGNORECASE): alternatives tried in order at each position.
std::vector<Span> find_pretokens(std::u32string_view t) {
  static constexpr std::string_view kLiterals[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re",
                                                   "'ve", "'m", "'ll", "'d"};
  std::vector<Span> spans;
  size_t n = t.size(), i = 0;
  while (i < n) {
    size_t len = 0;
    for (auto lit : kLiterals)
      if ((len = match_literal(t, i, lit)) > 0) break;
    if (len == 0) {
      char32_t c = t[i];
      if (is_letter(c)) {
        while (i + len < n && is_letter(t[i + len])) ++len;
      } else if (is_number(c)) {
        len = 1;
      } else if (is_other(c)) {
        while (i + len < n && is_other(t[i + len])) ++len;
      }
    }
    if (len == 0) {  // whitespace (or U+0345): not part of any token
      ++i;
      continue;
    }
    spans.push_back({i, len});
    i += len;
  }
  return spans;
}

}  // namespace

struct ClipTokenizer::State {
  ClipVocab vocab;
  mutable std::shared_mutex mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;
};

ClipTokenizer::ClipTokenizer(std::shared_ptr<State> state) : state_(std::move(state)) {}

ClipTokenizer ClipTokenizer::from_file(const std::filesystem::path& path) {
  auto state = std::make_shared<State>();
  state->vocab = load_clip_vocab(path);
  return ClipTokenizer(std::move(state));
}

std::vector<std::u32string> ClipTokenizer::pretokenize(std::u32string_view cleaned) {
  std::vector<std::u32string> out;
  for (const auto& s : find_pretokens(cleaned)) out.emplace_back(cleaned.substr(s.begin, s.size));
  return out;
}

void ClipTokenizer::append_bpe(std::u32string_view word, std::vector<int64_t>& out) const {
  const ClipVocab& v = state_->vocab;
  std::string key = u32_to_utf8(word);
  // CLIP's cache starts with the two specials mapped to themselves: only their exact spelling
  // becomes the special id ("<|ſtartoftext|>" matches the regex but goes through BPE).
  if (key == "<|startoftext|>" || key == "<|endoftext|>") {
    out.push_back(key[2] == 's' ? v.start_id : v.end_id);
    return;
  }
  {
    std::shared_lock lock(state_->mutex);
    auto it = state_->cache.find(key);
    if (it != state_->cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  // Symbols start as single bytes, the last one marked as the word end.
  std::vector<int32_t> syms(key.size());
  for (size_t i = 0; i < key.size(); ++i) {
    auto b = static_cast<uint8_t>(key[i]);
    syms[i] = i + 1 == key.size() ? v.byte_end_ids[b] : v.byte_ids[b];
  }
  std::vector<int32_t> next;
  while (syms.size() > 1) {
    int32_t best_rank = INT_MAX, first = -1, second = -1, merged = -1;
    for (size_t i = 0; i + 1 < syms.size(); ++i) {
      auto it = v.merges.find(ClipVocab::pair_key(syms[i], syms[i + 1]));
      if (it != v.merges.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        first = syms[i], second = syms[i + 1], merged = it->second.merged;
      }
    }
    if (merged < 0) break;
    next.clear();  // merge every occurrence of the best pair, left to right
    for (size_t i = 0; i < syms.size();) {
      if (i + 1 < syms.size() && syms[i] == first && syms[i + 1] == second) {
        next.push_back(merged);
        i += 2;
      } else {
        next.push_back(syms[i++]);
      }
    }
    syms.swap(next);
  }
  out.insert(out.end(), syms.begin(), syms.end());
  std::unique_lock lock(state_->mutex);
  if (state_->cache.size() >= kMaxCachedWords) state_->cache.clear();
  state_->cache.emplace(std::move(key), std::move(syms));
}

std::vector<int64_t> ClipTokenizer::encode(std::string_view text) const {
  std::u32string cleaned = clip_clean(text);
  std::vector<int64_t> ids;
  ids.reserve(cleaned.size() / 2 + 4);
  for (const auto& s : find_pretokens(cleaned))
    append_bpe(std::u32string_view(cleaned).substr(s.begin, s.size), ids);
  return ids;
}

std::vector<int64_t> ClipTokenizer::tokenize(std::string_view text) const {
  std::vector<int64_t> ids{start_id()};
  auto body = encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(end_id());
  return ids;
}

const std::string& ClipTokenizer::token_text(int64_t id) const {
  const auto& tokens = state_->vocab.tokens;
  LS_CHECK(id >= 0 && id < static_cast<int64_t>(tokens.size()) && !tokens[static_cast<size_t>(id)].empty(),
           "token id ", id, " is outside the vocabulary of ", state_->vocab.source.string(), " (", tokens.size(),
           " ids)");
  return tokens[static_cast<size_t>(id)];
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids) const {
  const auto& bytes_of = clip_char_bytes();
  std::string raw;
  for (int64_t id : ids) {
    const std::string& text = token_text(id);
    for (char32_t c : utf8_to_u32(text)) {
      LS_CHECK(c < bytes_of.size() && bytes_of[c] >= 0, "token id ", id, " ('", text,
               "') holds a character outside CLIP's byte alphabet; the vocabulary is not a CLIP one");
      raw.push_back(static_cast<char>(bytes_of[c]));
    }
  }
  std::string text = u32_to_utf8(utf8_to_u32(raw));  // invalid UTF-8 -> U+FFFD, as errors="replace"
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 4, "</w>") == 0) {
      out.push_back(' ');
      i += 4;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

int64_t ClipTokenizer::start_id() const { return state_->vocab.start_id; }
int64_t ClipTokenizer::end_id() const { return state_->vocab.end_id; }
int64_t ClipTokenizer::vocab_size() const { return static_cast<int64_t>(state_->vocab.tokens.size()); }

}  // namespace ls::text
