// BART's tokenizer, ported from the code transformers 5.23 runs through tokenizers 0.23: added
// tokens extracted first (tokenizers src/tokenizer/added_vocabulary.rs, find_matches and
// extract_and_normalize), the ByteLevel pre-tokenizer (src/pre_tokenizers/byte_level.rs: the GPT-2
// regex, bytes_to_unicode), BPE with a rank-ordered merge queue (src/models/bpe/word.rs merge_all),
// RobertaProcessing's <s> … </s>, and the ByteLevel decoder (from_utf8_lossy).
#include "text/bart_tokenizer.h"

#include <unicode/uchar.h>

#include <mutex>
#include <queue>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "text/bart_vocab.h"
#include "text/clip_vocab.h"
#include "text/unicode.h"

namespace ls::text {

// A byte trie over the added tokens' texts (daachorse's leftmost-longest matching). Outside the
// anonymous namespace because BartTokenizer::State holds two.
class BartTrie {
 public:
  void insert(const std::string& text, int32_t id) {
    if (text.empty()) return;
    uint32_t node = 0;
    for (char ch : text) {
      uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(ch);
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        it = edges_.emplace(key, static_cast<uint32_t>(ids_.size())).first;
        ids_.push_back(-1);
      }
      node = it->second;
    }
    ids_[node] = id;
    first_[static_cast<uint8_t>(text[0])] = true;
  }
  bool empty() const { return ids_.size() == 1; }
  // The longest token starting at s[i]: its length (0 when none) and id.
  size_t longest_at(std::string_view s, size_t i, int32_t& id) const {
    if (!first_[static_cast<uint8_t>(s[i])]) return 0;
    uint32_t node = 0;
    size_t best = 0;
    for (size_t k = i; k < s.size(); ++k) {
      auto it = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(s[k]));
      if (it == edges_.end()) break;
      node = it->second;
      if (ids_[node] >= 0) best = k + 1 - i, id = ids_[node];
    }
    return best;
  }

 private:
  std::unordered_map<uint64_t, uint32_t> edges_;  // (node << 8 | byte) -> child node
  std::vector<int32_t> ids_{-1};                  // node -> token id ending there, or -1
  std::array<bool, 256> first_{};
};

namespace {

// The BPE results kept per pre-token; a cap bounds memory over endless caption streams.
constexpr size_t kBartMaxCachedPieces = 1 << 18;

// A piece of the input: an added token's id, or text (id -1) still to be BPE-encoded.
struct BartSegment {
  std::string_view text;
  int32_t id;
};

// The code point that ends just before s[end] (s is valid UTF-8), and where it starts.
char32_t bart_cp_before(std::string_view s, size_t end, size_t& start) {
  start = end - 1;
  while (start > 0 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
  size_t len = 0;
  return static_cast<char32_t>(utf8_code_point_at(s, start, len));
}

// Rust regex `\w` (Unicode): Alphabetic, marks, decimal digits, connector punctuation, Join_Control.
bool bart_is_word_char(char32_t c) {
  auto u = static_cast<UChar32>(c);
  return u_hasBinaryProperty(u, UCHAR_ALPHABETIC) || u_hasBinaryProperty(u, UCHAR_JOIN_CONTROL) ||
         (U_GET_GC_MASK(u) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0;
}

// `\s*$` on s[..end]: where its trailing whitespace starts.
size_t bart_space_start_before(std::string_view s, size_t end) {
  while (end > 0) {
    size_t start = 0;
    if (!is_white_space(bart_cp_before(s, end, start))) break;
    end = start;
  }
  return end;
}

// `^\s*` on s[begin..]: where its leading whitespace ends.
size_t bart_space_end_after(std::string_view s, size_t begin) {
  while (begin < s.size()) {
    size_t len = 0;
    int32_t c = utf8_code_point_at(s, begin, len);
    if (c < 0 || !is_white_space(static_cast<char32_t>(c))) break;
    begin += len;
  }
  return begin;
}

// AddedVocabulary::find_matches over one piece of text, appending the resulting segments (empty
// text segments dropped, as PreTokenizedString::split drops them).
void bart_find_matches(std::string_view s, const BartTrie& trie,
                       const std::unordered_map<int32_t, BartAddedToken>& added,
                       const std::unordered_set<int32_t>& ignored, std::vector<BartSegment>& out) {
  auto push_text = [&](size_t b, size_t e) {
    if (e > b) out.push_back({s.substr(b, e - b), -1});
  };
  if (trie.empty()) return push_text(0, s.size());
  size_t start_offset = 0;
  for (size_t pos = 0; pos < s.size();) {
    int32_t id = -1;
    size_t len = trie.longest_at(s, pos, id);
    if (len == 0) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + len;
    pos = stop;  // the match iterator moves on whatever happens to this match
    if (ignored.count(id) > 0) continue;
    const BartAddedToken& tok = added.at(id);
    if (tok.single_word) {
      size_t before = 0, after_len = 0;
      bool start_space = start == 0 || !bart_is_word_char(bart_cp_before(s, start, before));
      int32_t next = stop < s.size() ? utf8_code_point_at(s, stop, after_len) : -1;
      bool stop_space = stop == s.size() || next < 0 || !bart_is_word_char(static_cast<char32_t>(next));
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) start = std::max(bart_space_start_before(s, start), start_offset);
    if (tok.rstrip) stop = bart_space_end_after(s, stop);
    if (start_offset < start) push_text(start_offset, start);
    out.push_back({s.substr(start, stop - start), id});
    start_offset = stop;
  }
  if (start_offset < s.size()) push_text(start_offset, s.size());
}

enum class BartClass { kLetter, kNumber, kOther };

bool bart_in_class(char32_t c, BartClass k) {
  switch (k) {
    case BartClass::kLetter: return is_letter(c);
    case BartClass::kNumber: return is_number(c);
    default: return !is_white_space(c) && !is_letter(c) && !is_number(c);
  }
}

// Length of the match of 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// at t[i] (Oniguruma's ordered alternation; some alternative always matches).
size_t bart_match_at(std::u32string_view t, size_t i) {
  const size_t n = t.size();
  if (t[i] == U'\'' && i + 1 < n) {
    char32_t a = t[i + 1];
    if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
    if (i + 2 < n) {
      char32_t b = t[i + 2];
      if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
    }
  }
  const size_t s = t[i] == U' ' && i + 1 < n ? i + 1 : i;  // " ?" takes the space when it can
  for (BartClass k : {BartClass::kLetter, BartClass::kNumber, BartClass::kOther}) {
    if (!bart_in_class(t[s], k)) continue;
    size_t e = s + 1;
    while (e < n && bart_in_class(t[e], k)) ++e;
    return e - i;
  }
  size_t e = i;
  while (e < n && is_white_space(t[e])) ++e;
  if (e == n) return n - i;           // \s+ up to the end
  if (e - i >= 2) return e - i - 1;   // \s+(?!\S): leave the last space to the next word
  return 1;                           // \s+
}

// The pre-token byte ranges of valid UTF-8 `s`.
void bart_pretokens(std::string_view s, std::vector<std::string_view>& out) {
  std::u32string t = utf8_to_u32(s);
  std::vector<size_t> offset(t.size() + 1, 0);
  for (size_t i = 0, b = 0; i < t.size(); ++i) {
    offset[i] = b;
    b += t[i] < 0x80 ? 1 : t[i] < 0x800 ? 2 : t[i] < 0x10000 ? 3 : 4;
    offset[i + 1] = b;
  }
  for (size_t i = 0; i < t.size();) {
    size_t len = bart_match_at(t, i);
    out.push_back(s.substr(offset[i], offset[i + len] - offset[i]));
    i += len;
  }
}

struct BartMergeItem {
  int32_t rank;
  int32_t pos;
  int32_t merged;
};

// Pops the lowest rank first, then the leftmost position (word.rs `impl Ord for Merge`).
struct BartMergeOrder {
  bool operator()(const BartMergeItem& a, const BartMergeItem& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

struct BartSymbol {
  int32_t id, prev, next, len;
};

// Word::merge_all without dropout.
std::vector<int32_t> bart_merge_all(std::vector<BartSymbol>& sym, const BartVocab& v) {
  std::priority_queue<BartMergeItem, std::vector<BartMergeItem>, BartMergeOrder> queue;
  auto lookup = [&](int32_t left, int32_t right) -> const BartVocab::Merge* {
    auto it = v.merges.find(BartVocab::pair_key(left, right));
    return it == v.merges.end() ? nullptr : &it->second;
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i)
    if (auto m = lookup(sym[i].id, sym[i + 1].id)) queue.push({m->rank, static_cast<int32_t>(i), m->merged});
  while (!queue.empty()) {
    BartMergeItem top = queue.top();
    queue.pop();
    BartSymbol& cur = sym[static_cast<size_t>(top.pos)];
    if (cur.len == 0 || cur.next == -1) continue;
    auto next_pos = static_cast<size_t>(cur.next);
    BartSymbol right = sym[next_pos];
    auto m = lookup(cur.id, right.id);
    if (m == nullptr || m->merged != top.merged) continue;  // an expired entry
    cur.id = top.merged;
    cur.len += right.len;
    cur.next = right.next;
    sym[next_pos].len = 0;
    if (right.next >= 0) sym[static_cast<size_t>(right.next)].prev = top.pos;
    if (cur.prev >= 0)
      if (auto p = lookup(sym[static_cast<size_t>(cur.prev)].id, cur.id)) queue.push({p->rank, cur.prev, p->merged});
    if (cur.next >= 0)
      if (auto q = lookup(cur.id, sym[static_cast<size_t>(cur.next)].id)) queue.push({q->rank, top.pos, q->merged});
  }
  std::vector<int32_t> ids;
  for (const auto& s : sym)
    if (s.len != 0) ids.push_back(s.id);
  return ids;
}

}  // namespace

std::vector<std::string> florence2_added_tokens() {
  std::vector<std::string> t = {"<od>", "</od>", "<ocr>", "</ocr>"};
  for (int i = 0; i < 1000; ++i) t.push_back("<loc_" + std::to_string(i) + ">");
  for (const char* s : {"<cap>", "</cap>", "<ncap>", "</ncap>", "<dcap>", "</dcap>", "<grounding>", "</grounding>",
                        "<seg>", "</seg>", "<sep>", "<region_cap>", "</region_cap>", "<region_to_desciption>",
                        "</region_to_desciption>", "<proposal>", "</proposal>", "<poly>", "</poly>", "<and>"})
    t.emplace_back(s);
  return t;
}

struct BartTokenizer::State {
  BartVocab vocab;
  std::unordered_map<std::string, int32_t> added_ids;      // added token text -> id
  std::unordered_map<int32_t, BartAddedToken> added;       // id -> added token
  std::unordered_set<std::string> special_texts;           // texts skipped by skip_special_tokens
  std::vector<const std::string*> texts;                   // id -> text (added first), null when none
  std::vector<uint8_t> special;                            // id -> text is special
  BartTrie raw_trie, normalized_trie;                      // non-normalized tokens first, then normalized
  std::unordered_set<int32_t> unsplit;                     // specials left to BPE (split_special_tokens)
  int64_t cls = -1, sep = -1, bos = -1, eos = -1, pad = -1, unk = -1;
  mutable std::shared_mutex mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  // AddedVocabulary::add_tokens: a known text keeps its id (added first, then vocab.json); new
  // ones are numbered from the vocabulary's size, or past the largest added id when that is larger.
  void add_tokens(const std::vector<BartAddedToken>& tokens) {
    auto model_size = static_cast<int32_t>(vocab.ids.size());
    int32_t next_id = model_size;
    if (!added.empty()) {
      int32_t max_id = -1;
      for (const auto& [id, t] : added) max_id = std::max(max_id, id);
      if (max_id >= model_size || model_size == 0) next_id = max_id + 1;
    }
    for (const auto& t : tokens) {
      if (t.content.empty()) continue;
      int32_t id = -1;
      if (auto a = added_ids.find(t.content); a != added_ids.end()) {
        const BartAddedToken& old = added.at(a->second);
        if (old.single_word == t.single_word && old.lstrip == t.lstrip && old.rstrip == t.rstrip &&
            old.normalized == t.normalized && old.special == t.special)
          continue;
        id = a->second;
      } else if (auto m = vocab.ids.find(t.content); m != vocab.ids.end()) {
        id = m->second;
      } else {
        id = next_id++;
      }
      added_ids[t.content] = id;
      if (t.special) special_texts.insert(t.content);
      added[id] = t;
    }
  }

  void finish() {
    size_t n = vocab.tokens.size();
    for (const auto& [id, t] : added) n = std::max(n, static_cast<size_t>(id) + 1);
    texts.assign(n, nullptr);
    for (size_t i = 0; i < vocab.tokens.size(); ++i)
      if (vocab.present[i]) texts[i] = &vocab.tokens[i];
    for (const auto& [id, t] : added) {
      texts[static_cast<size_t>(id)] = &t.content;
      (t.normalized ? normalized_trie : raw_trie).insert(t.content, id);
      if (vocab.split_special_tokens && special_texts.count(t.content) > 0) unsplit.insert(id);
    }
    special.assign(n, 0);
    for (size_t i = 0; i < n; ++i) special[i] = texts[i] != nullptr && special_texts.count(*texts[i]) > 0;
  }

  int64_t find(const std::string& text) const {
    if (auto a = added_ids.find(text); a != added_ids.end()) return a->second;
    auto m = vocab.ids.find(text);
    return m == vocab.ids.end() ? -1 : m->second;
  }
};

BartTokenizer::BartTokenizer(std::shared_ptr<State> state) : state_(std::move(state)) {}

BartTokenizer BartTokenizer::load(const std::filesystem::path& folder, const std::vector<std::string>& added_tokens) {
  auto s = std::make_shared<State>();
  s->vocab = load_bart_vocab(folder);
  s->add_tokens(s->vocab.config_tokens);
  std::vector<BartAddedToken> extra;
  extra.reserve(added_tokens.size());
  for (const auto& text : added_tokens) extra.push_back(BartAddedToken{text});  // special, no strip
  s->add_tokens(extra);
  s->finish();
  const BartVocab& v = s->vocab;
  s->cls = s->find(v.cls_token), s->sep = s->find(v.sep_token);
  s->bos = s->find(v.bos_token), s->eos = s->find(v.eos_token);
  s->pad = s->find(v.pad_token), s->unk = s->find(v.unk_token);
  return BartTokenizer(std::move(s));
}

std::vector<std::string> BartTokenizer::pretokenize(std::string_view text) {
  std::string valid = u32_to_utf8(utf8_to_u32(text));
  std::vector<std::string_view> pieces;
  bart_pretokens(valid, pieces);
  return {pieces.begin(), pieces.end()};
}

void BartTokenizer::append_bpe(const std::string& piece, std::vector<int64_t>& out) const {
  {
    std::shared_lock lock(state_->mutex);
    auto it = state_->cache.find(piece);
    if (it != state_->cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const BartVocab& v = state_->vocab;
  std::vector<BartSymbol> sym;
  sym.reserve(piece.size());
  for (char ch : piece) {
    int32_t id = v.byte_ids[static_cast<uint8_t>(ch)];
    if (id < 0) continue;  // no unk_token in BART's BPE: a byte vocab.json lacks is dropped
    auto k = static_cast<int32_t>(sym.size());
    if (k > 0) sym.back().next = k;
    sym.push_back({id, k - 1, -1, 1});
  }
  std::vector<int32_t> ids = bart_merge_all(sym, v);
  out.insert(out.end(), ids.begin(), ids.end());
  std::unique_lock lock(state_->mutex);
  if (state_->cache.size() >= kBartMaxCachedPieces) state_->cache.clear();
  state_->cache.emplace(piece, std::move(ids));
}

void BartTokenizer::append_segment(std::string_view text, std::vector<int64_t>& out) const {
  std::string prefixed;
  if (state_->vocab.add_prefix_space && text.front() != ' ') {
    prefixed = " " + std::string(text);
    text = prefixed;
  }
  std::vector<std::string_view> pieces;
  bart_pretokens(text, pieces);
  for (auto p : pieces) append_bpe(std::string(p), out);
}

std::vector<int64_t> BartTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const State& s = *state_;
  std::string valid = u32_to_utf8(utf8_to_u32(text));
  std::vector<BartSegment> first, second;
  bart_find_matches(valid, s.raw_trie, s.added, s.unsplit, first);
  for (const auto& seg : first) {
    if (seg.id >= 0)
      second.push_back(seg);
    else
      bart_find_matches(seg.text, s.normalized_trie, s.added, s.unsplit, second);
  }
  std::vector<int64_t> ids;
  ids.reserve(valid.size() / 3 + 4);
  if (add_special_tokens) ids.push_back(s.cls);
  for (const auto& seg : second) {
    if (seg.id >= 0)
      ids.push_back(seg.id);
    else
      append_segment(seg.text, ids);
  }
  if (add_special_tokens) ids.push_back(s.sep);
  return ids;
}

std::string BartTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  const State& s = *state_;
  const auto& bytes_of = clip_char_bytes();
  std::string raw, piece;
  for (int64_t id : ids) {
    LS_CHECK(id >= 0, "cannot decode token id ", id, ": ids are non-negative");
    if (id >= static_cast<int64_t>(s.texts.size()) || s.texts[static_cast<size_t>(id)] == nullptr) continue;
    auto i = static_cast<size_t>(id);
    if (skip_special_tokens && s.special[i]) continue;
    const std::string& text = *s.texts[i];
    // ByteLevel::decode_chain: a token made only of byte characters gives those bytes, any
    // other token its own UTF-8 text.
    piece.clear();
    bool bytes = true;
    for (char32_t c : utf8_to_u32(text)) {
      if (c >= bytes_of.size() || bytes_of[c] < 0) {
        bytes = false;
        break;
      }
      piece.push_back(static_cast<char>(bytes_of[c]));
    }
    raw += bytes ? piece : text;
  }
  return u32_to_utf8(utf8_to_u32(raw));  // String::from_utf8_lossy
}

int64_t BartTokenizer::token_id(std::string_view token) const { return state_->find(std::string(token)); }

const std::string& BartTokenizer::token_text(int64_t id) const {
  const State& s = *state_;
  LS_CHECK(id >= 0 && id < static_cast<int64_t>(s.texts.size()) && s.texts[static_cast<size_t>(id)] != nullptr,
           "token id ", id, " is outside the vocabulary of ", s.vocab.source.string(), " (", vocab_size(), " ids)");
  return *s.texts[static_cast<size_t>(id)];
}

bool BartTokenizer::is_special(int64_t id) const {
  return id >= 0 && id < static_cast<int64_t>(state_->special.size()) && state_->special[static_cast<size_t>(id)];
}

int64_t BartTokenizer::vocab_size() const {
  const State& s = *state_;
  int64_t n = static_cast<int64_t>(s.vocab.ids.size());
  for (const auto& [text, id] : s.added_ids) n += s.vocab.ids.count(text) == 0 ? 1 : 0;
  return n;
}

int64_t BartTokenizer::bos_id() const { return state_->bos; }
int64_t BartTokenizer::pad_id() const { return state_->pad; }
int64_t BartTokenizer::eos_id() const { return state_->eos; }
int64_t BartTokenizer::unk_id() const { return state_->unk; }

}  // namespace ls::text
