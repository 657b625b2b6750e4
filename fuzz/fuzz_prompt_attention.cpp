// libFuzzer target for A1111's prompt emphasis parser (text/prompt_attention.cpp,
// parse_prompt_attention): "(x)", "[x]", "(x:w)", the escapes \( \) \[ \] \\, a lone "\", unbalanced
// brackets, BREAK as a whole word with the blanks around it, the merge of equal neighbours. The input
// is the prompt, any bytes (invalid UTF-8 reads as U+FFFD, as the parser decodes it). Checked:
//  - the pieces equal, text and weight bit for bit (NaN as NaN), what A1111's algorithm gives,
//    recomputed here from prompt_parser.py: re_attention's alternatives tried in order at each
//    position, re.split(r"\s*\bBREAK\b\s*") on each text match, every multiply_range applied in
//    A1111's order (closings as they come, then the open "(" and then the open "["), then the merge.
//    So the texts joined are the prompt with the syntax taken out (escapes leave their character,
//    a lone "\" nothing, "(" "[" and the brackets and ":w)" that close something nothing) and each
//    BREAK with its blanks turned into "BREAK"; empty pieces stay only where A1111 keeps them (a
//    lone "\" or a part next to a BREAK whose weight differs from its neighbours, or "" alone);
//  - ls::Error exactly when a ":w)" closing an open "(" holds a weight Python's float() refuses
//    (two dots, no digit); a weight float() takes but that overflows or underflows a double may be
//    refused too (A1111 would multiply by inf or 0);
//  - no two neighbours have equal weights; without explicit weights every weight is finite and
//    non-zero, negative only on a BREAK piece (-1 times the brackets around it).
// chunk_pieces (not fuzzed here: it needs the CLIP vocabulary) links the tokenizer sources in.
// fuzz-what: A1111 prompt emphasis ((x), [x], (x:w), escapes, BREAK)
// fuzz-sources: src/text/prompt_attention.cpp src/text/unicode.cpp src/text/clip_tokenizer.cpp
// fuzz-sources: src/text/clip_vocab.cpp src/text/text_clean.cpp src/text/html_unescape.cpp src/text/html_entities.cpp
// fuzz-libs: -licuuc -lz
// fuzz-max-len: 2048
#include <unicode/uchar.h>

#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "text/prompt_attention.h"
#include "text/unicode.h"

namespace {

using ls::text::PromptPiece;

// One entry of A1111's res list before the merge.
struct PaEntry {
  std::u32string text;
  double weight;
};
// One multiply_range call: entries [from, to) times m.
struct PaScale {
  size_t from, to;
  double m;
};
struct PaReference {
  std::vector<PaEntry> res;
  std::vector<PaScale> scales;  // in the order A1111 applies them
  bool refused = false;         // float() raises ValueError
  bool out_of_range = false;    // float() gives inf or 0 (or a subnormal) from its digits
  bool explicit_weight = false;
};

bool pa_word(char32_t c) { return c == U'_' || ls::text::is_letter(c) || ls::text::is_number(c); }

// re.split(r"\s*\bBREAK\b\s*", s): the leftmost match from each position. \s* is greedy and only
// its longest take can be followed by 'B', so a start that fails fails for every blank after it.
void pa_split_break(std::u32string_view s, std::vector<PaEntry>& res) {
  size_t part = 0, from = 0;
  while (from < s.size()) {
    size_t b = from;
    while (b < s.size() && ls::text::py_isspace(s[b])) ++b;
    const bool hit = s.substr(b, 5) == U"BREAK" && (b == 0 || !pa_word(s[b - 1])) &&
                     (b + 5 == s.size() || !pa_word(s[b + 5]));
    if (!hit) {
      from = b + 1;
      continue;
    }
    size_t end = b + 5;
    while (end < s.size() && ls::text::py_isspace(s[end])) ++end;
    res.push_back({std::u32string(s.substr(part, from - part)), 1.0});
    res.push_back({U"BREAK", -1.0});
    part = from = end;
  }
  res.push_back({std::u32string(s.substr(part)), 1.0});
}

// Python float() of [+-]?[.\d]+ (\d: any Unicode decimal digit, read as its value).
double pa_float(std::u32string_view w, PaReference& ref) {
  std::string ascii;
  int dots = 0, digits = 0;
  for (char32_t c : w) {
    if (c == U'.' || c == U'+' || c == U'-') {
      dots += c == U'.';
      ascii += static_cast<char>(c);
    } else {
      ++digits;
      ascii += static_cast<char>('0' + u_charDigitValue(static_cast<UChar32>(c)));
    }
  }
  if (dots > 1 || digits == 0) {
    ref.refused = true;
    return 0;
  }
  errno = 0;
  const double v = std::strtod(ascii.c_str(), nullptr);
  if (errno == ERANGE) ref.out_of_range = true;
  return v;
}

PaReference pa_reference(const std::u32string& t) {
  PaReference ref;
  std::vector<size_t> round, square;
  const auto close = [&](size_t from, double m) { ref.scales.push_back({from, ref.res.size(), m}); };
  const std::u32string_view specials = U"\\()[]:";
  for (size_t i = 0; i < t.size();) {
    const char32_t c = t[i];
    if (c == U'\\') {
      const bool escape = i + 1 < t.size() && std::u32string_view(U"()[]\\").find(t[i + 1]) != std::u32string_view::npos;
      ref.res.push_back({escape ? t.substr(i + 1, 1) : U"", 1.0});
      i += escape ? 2 : 1;
    } else if (c == U'(') {
      round.push_back(ref.res.size());
      ++i;
    } else if (c == U'[') {
      square.push_back(ref.res.size());
      ++i;
    } else if (c == U':') {
      size_t k = i + 1;
      if (k < t.size() && (t[k] == U'+' || t[k] == U'-')) ++k;
      const size_t first = k;
      while (k < t.size() && (t[k] == U'.' || ls::text::is_decimal_digit(t[k]))) ++k;
      const bool weight = k > first && k < t.size() && t[k] == U')';
      if (weight && !round.empty()) {
        const double w = pa_float(std::u32string_view(t).substr(i + 1, k - i - 1), ref);
        if (ref.refused) return ref;
        close(round.back(), w);
        round.pop_back();
        ref.explicit_weight = true;
      } else {
        pa_split_break(std::u32string_view(t).substr(i, weight ? k + 1 - i : 1), ref.res);
      }
      i = weight ? k + 1 : i + 1;
    } else if (c == U')' && !round.empty()) {
      close(round.back(), 1.1);
      round.pop_back();
      ++i;
    } else if (c == U']' && !square.empty()) {
      close(square.back(), 1 / 1.1);
      square.pop_back();
      ++i;
    } else if (c == U')' || c == U']') {
      pa_split_break(std::u32string_view(t).substr(i, 1), ref.res);
      ++i;
    } else {
      size_t j = i;
      while (j < t.size() && specials.find(t[j]) == std::u32string_view::npos) ++j;
      pa_split_break(std::u32string_view(t).substr(i, j - i), ref.res);
      i = j;
    }
  }
  for (size_t p : round) close(p, 1.1);
  for (size_t p : square) close(p, 1 / 1.1);
  return ref;
}

// The entries weighted and merged as A1111 returns them.
std::vector<PromptPiece> pa_pieces(const PaReference& ref) {
  std::vector<PromptPiece> out;
  for (size_t e = 0; e < ref.res.size(); ++e) {
    double w = ref.res[e].weight;
    for (const PaScale& s : ref.scales)
      if (s.from <= e && e < s.to) w *= s.m;
    if (!out.empty() && out.back().weight == w) out.back().text += ls::text::u32_to_utf8(ref.res[e].text);
    else out.push_back({ls::text::u32_to_utf8(ref.res[e].text), w});
  }
  if (out.empty()) out.push_back({"", 1.0});
  return out;
}

bool pa_same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view prompt(reinterpret_cast<const char*>(data), size);
  const PaReference ref = pa_reference(ls::text::utf8_to_u32(prompt));
  std::vector<PromptPiece> got;
  try {
    got = ls::text::parse_prompt_attention(prompt);
  } catch (const ls::Error&) {
    if (!ref.refused && !ref.out_of_range) __builtin_trap();
    return 0;
  }
  if (ref.refused) __builtin_trap();
  const std::vector<PromptPiece> want = pa_pieces(ref);
  if (got.size() != want.size()) __builtin_trap();
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].text != want[i].text || !pa_same(got[i].weight, want[i].weight)) __builtin_trap();
    if (i > 0 && got[i - 1].weight == got[i].weight) __builtin_trap();
    if (!ref.explicit_weight) {
      const double w = got[i].weight;
      if (!std::isfinite(w) || w == 0 || (w < 0 && got[i].text != "BREAK")) __builtin_trap();
    }
  }
  return 0;
}
