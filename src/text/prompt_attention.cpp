// A1111 prompt emphasis and chunks. The scanner follows prompt_parser.py's re_attention alternatives
// in their order at each position, and re_break's \s, \b with Python's Unicode str semantics;
// chunking follows sd_hijack_clip.py FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line.
#include "text/prompt_attention.h"

#include <unicode/uchar.h>

#include <charconv>

#include "core/error.h"
#include "text/unicode.h"

namespace ls::text {
namespace {

// Python re's \w on str: alphanumeric (str.isalnum) or underscore.
bool is_word(char32_t c) { return c == U'_' || is_letter(c) || is_number(c); }

bool is_special(char32_t c) { return c == U'\\' || c == U'(' || c == U')' || c == U'[' || c == U']' || c == U':'; }

class AttentionParser {
 public:
  std::vector<PromptPiece> run(const std::u32string& t);

 private:
  void multiply_range(size_t from, double multiplier) {
    for (size_t p = from; p < res_.size(); ++p) res_[p].weight *= multiplier;
  }
  void add_literal(std::u32string_view s) { res_.push_back({u32_to_utf8(s), 1.0}); }
  void add_text(std::u32string_view s);
  size_t match_weight(const std::u32string& t, size_t colon) const;

  std::vector<PromptPiece> res_;
  std::vector<size_t> round_, square_;
};

// re.split(r"\s*\bBREAK\b\s*", s): each BREAK that is a whole word, together with the blanks on
// both sides, separates two (possibly empty) parts; \b looks at s only, as s is split on its own.
void AttentionParser::add_text(std::u32string_view s) {
  static constexpr std::u32string_view kBreak = U"BREAK";
  size_t part_begin = 0, search = 0;
  while (true) {
    size_t at = s.find(kBreak, search);
    if (at == std::u32string_view::npos) break;
    size_t after = at + kBreak.size();
    bool bounded = (at == 0 || !is_word(s[at - 1])) && (after == s.size() || !is_word(s[after]));
    if (!bounded) {
      search = at + 1;
      continue;
    }
    size_t lead = at;  // the leftmost match start: blanks directly before BREAK, after the last match
    while (lead > part_begin && py_isspace(s[lead - 1])) --lead;
    while (after < s.size() && py_isspace(s[after])) ++after;
    add_literal(s.substr(part_begin, lead - part_begin));
    res_.push_back({"BREAK", -1.0});
    part_begin = search = after;
  }
  add_literal(s.substr(part_begin));
}

// Length of ":([+-]?[.\d]+)\)" at t[colon], or 0.
size_t AttentionParser::match_weight(const std::u32string& t, size_t colon) const {
  size_t k = colon + 1;
  if (k < t.size() && (t[k] == U'+' || t[k] == U'-')) ++k;
  size_t digits = k;
  while (k < t.size() && (t[k] == U'.' || is_decimal_digit(t[k]))) ++k;
  if (k == digits || k >= t.size() || t[k] != U')') return 0;
  return k + 1 - colon;
}

// Python float() of what match_weight matched (without ':' and ')'): Unicode decimal digits
// count as their values; more than one '.' or no digit is a ValueError in A1111.
double parse_weight(std::u32string_view w) {
  std::string ascii;
  int dots = 0, digits = 0;
  for (char32_t c : w) {
    if (c == U'.') {
      ++dots;
      ascii += '.';
    } else if (c == U'+' || c == U'-') {
      ascii += static_cast<char>(c);
    } else {
      ++digits;
      ascii += static_cast<char>('0' + u_charDigitValue(static_cast<UChar32>(c)));
    }
  }
  std::string_view text(ascii);
  bool negative = !text.empty() && text[0] == '-';
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) text.remove_prefix(1);
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  LS_CHECK(dots <= 1 && digits > 0 && ec == std::errc() && ptr == text.data() + text.size(),
           "prompt: emphasis weight '", u32_to_utf8(w), "' is not a number; write it like (word:1.2)");
  return negative ? -value : value;
}

std::vector<PromptPiece> AttentionParser::run(const std::u32string& t) {
  const double round_multiplier = 1.1, square_multiplier = 1 / 1.1;
  size_t i = 0;
  while (i < t.size()) {
    char32_t c = t[i];
    if (c == U'\\') {
      bool escape = i + 1 < t.size() && (t[i + 1] == U'(' || t[i + 1] == U')' || t[i + 1] == U'[' ||
                                         t[i + 1] == U']' || t[i + 1] == U'\\');
      add_literal(escape ? std::u32string_view(t).substr(i + 1, 1) : std::u32string_view());
      i += escape ? 2 : 1;
    } else if (c == U'(') {
      round_.push_back(res_.size());
      ++i;
    } else if (c == U'[') {
      square_.push_back(res_.size());
      ++i;
    } else if (c == U':') {
      size_t len = match_weight(t, i);
      if (len > 0 && !round_.empty()) {
        double w = parse_weight(std::u32string_view(t).substr(i + 1, len - 2));
        multiply_range(round_.back(), w);
        round_.pop_back();
      } else {
        add_text(std::u32string_view(t).substr(i, std::max<size_t>(len, 1)));
      }
      i += std::max<size_t>(len, 1);
    } else if (c == U')' && !round_.empty()) {
      multiply_range(round_.back(), round_multiplier);
      round_.pop_back();
      ++i;
    } else if (c == U']' && !square_.empty()) {
      multiply_range(square_.back(), square_multiplier);
      square_.pop_back();
      ++i;
    } else if (c == U')' || c == U']') {
      add_text(std::u32string_view(t).substr(i, 1));
      ++i;
    } else {
      size_t j = i;
      while (j < t.size() && !is_special(t[j])) ++j;
      add_text(std::u32string_view(t).substr(i, j - i));
      i = j;
    }
  }
  for (size_t pos : round_) multiply_range(pos, round_multiplier);
  for (size_t pos : square_) multiply_range(pos, square_multiplier);
  if (res_.empty()) res_.push_back({"", 1.0});
  for (size_t k = 0; k + 1 < res_.size();) {  // merge runs of identical weights
    if (res_[k].weight == res_[k + 1].weight) {
      res_[k].text += res_[k + 1].text;
      res_.erase(res_.begin() + static_cast<std::ptrdiff_t>(k) + 1);
    } else {
      ++k;
    }
  }
  return std::move(res_);
}

constexpr size_t kBody = kWindowBody;

class Chunker {
 public:
  Chunker(int64_t comma, int backtrack) : comma_(comma), backtrack_(backtrack) {}

  void add(int64_t token, double weight) {
    if (token == comma_) {
      last_comma_ = static_cast<int>(ids_.size());
    } else if (backtrack_ != 0 && ids_.size() == kBody && last_comma_ != -1 &&
               kWindowBody - last_comma_ <= backtrack_) {
      // Full chunk, comma nearby: the words after the comma start the next chunk instead.
      size_t cut = static_cast<size_t>(last_comma_) + 1;
      std::vector<int64_t> moved_ids(ids_.begin() + cut, ids_.end());
      std::vector<double> moved_weights(weights_.begin() + cut, weights_.end());
      ids_.resize(cut);
      weights_.resize(cut);
      close();
      ids_ = std::move(moved_ids);
      weights_ = std::move(moved_weights);
    }
    if (ids_.size() == kBody) close();
    ids_.push_back(token);
    weights_.push_back(weight);
  }

  // next_chunk(): pad with the end id, weight 1.
  void close() {
    PromptChunk chunk;
    chunk.tokens = static_cast<int>(ids_.size());
    chunk.ids.fill(ClipTokenizer::kEnd);
    chunk.weights.fill(1.0);
    std::copy(ids_.begin(), ids_.end(), chunk.ids.begin());
    std::copy(weights_.begin(), weights_.end(), chunk.weights.begin());
    chunks_.push_back(chunk);
    ids_.clear();
    weights_.clear();
    last_comma_ = -1;
  }

  std::vector<PromptChunk> finish() {
    if (!ids_.empty() || chunks_.empty()) close();
    return std::move(chunks_);
  }

 private:
  int64_t comma_;
  int backtrack_;
  std::vector<int64_t> ids_;
  std::vector<double> weights_;
  int last_comma_ = -1;
  std::vector<PromptChunk> chunks_;
};

}  // namespace

std::vector<PromptPiece> parse_prompt_attention(std::string_view prompt) {
  return AttentionParser().run(utf8_to_u32(prompt));
}

std::vector<PromptChunk> chunk_pieces(const ClipTokenizer& tokenizer, const std::vector<PromptPiece>& pieces,
                                      int comma_backtrack) {
  LS_CHECK(comma_backtrack >= 0 && comma_backtrack <= kWindowBody,
           "prompt: comma backtrack must be in 0..75 tokens, got ", comma_backtrack);
  auto comma = tokenizer.encode(",");
  LS_CHECK(comma.size() == 1, "prompt: the tokenizer has no single ',' token");
  Chunker chunker(comma[0], comma_backtrack);
  for (const auto& piece : pieces) {
    if (piece.text == "BREAK" && piece.weight == -1) {
      chunker.close();
      continue;
    }
    for (int64_t token : tokenizer.encode(piece.text)) chunker.add(token, piece.weight);
  }
  return chunker.finish();
}

std::vector<PromptChunk> chunk_prompt(const ClipTokenizer& tokenizer, std::string_view prompt, int comma_backtrack) {
  return chunk_pieces(tokenizer, parse_prompt_attention(prompt), comma_backtrack);
}

TokenWindow chunk_window(const PromptChunk& chunk, int64_t pad, int64_t start, int64_t end) {
  TokenWindow w;
  w[0] = start;
  std::copy(chunk.ids.begin(), chunk.ids.end(), w.begin() + 1);
  w[kWindowTokens - 1] = end;
  if (pad == end) return w;  // process_tokens only rewrites when pad and end differ
  bool ended = false;
  for (auto& id : w) {
    if (ended) id = pad;
    ended = ended || id == end;
  }
  return w;
}

std::array<double, kWindowTokens> chunk_weights(const PromptChunk& chunk) {
  std::array<double, kWindowTokens> w;
  w.fill(1.0);
  std::copy(chunk.weights.begin(), chunk.weights.end(), w.begin() + 1);
  return w;
}

}  // namespace ls::text
