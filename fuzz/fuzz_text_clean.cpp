// libFuzzer target for the CLIP tokenizer's text cleaning (text/text_clean.cpp: ftfy's fix_text,
// html.unescape twice, strip, whitespace_clean, lower; text/html_unescape.cpp and html_entities.cpp;
// the UTF-8 decoder of text/unicode.cpp) and CLIP's pre-token regex (ClipTokenizer::pretokenize,
// which needs no vocabulary; BPE does, and is left out). The input is any bytes, invalid UTF-8
// included. Beyond "a result or ls::Error":
//  - decoding gives Unicode scalar values only and, on valid UTF-8, encodes back to the same bytes;
//  - html_unescape and ftfy_unescape_html leave text without '&' alone and never lengthen it;
//  - ftfy_fix_text's result is a fixed point of every fixer it repeats (c1 controls, ligatures,
//    width, quotes, line breaks, terminal escapes, control characters, NFC), and of ftfy_fix_text
//    itself when it holds no '&' (with a '&' it need not be: html unescaping stops at the first line
//    holding a '<', and a line break ftfy makes moves that boundary, as in ftfy);
//  - clip_clean's result has no C0 control or DEL, no blank at either end, no White_Space but single
//    ' ', and is its own lower case. Cleaning it again is not the identity in general: CLIP lowers
//    after NFC ("W\u030A" -> "w\u030A", whose NFC is U+1E98) and unescapes after ftfy (twice), so
//    what holds is clean(clean(t)) == lower(nfc(clean(t))), when ftfy's result held no '&';
//  - the pre-tokens are non-empty, hold no White_Space, and joined give the text less its
//    White_Space and U+0345 (which CLIP's IGNORECASE pattern matches with no alternative), on the
//    cleaned text and on the raw decoded input.
// fuzz-what: CLIP text cleaning (ftfy fixers, html.unescape, whitespace, lower, pre-tokens)
// fuzz-sources: src/text/text_clean.cpp src/text/html_unescape.cpp src/text/html_entities.cpp
// fuzz-sources: src/text/unicode.cpp src/text/clip_tokenizer.cpp src/text/clip_vocab.cpp
// fuzz-libs: -licuuc -lz
// fuzz-max-len: 4096
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "text/clip_tokenizer.h"
#include "text/html_unescape.h"
#include "text/text_clean.h"
#include "text/unicode.h"

namespace {

using ls::text::is_white_space;

bool tc_scalars(std::u32string_view t) {
  for (char32_t c : t)
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
  return true;
}

bool tc_valid_utf8(std::string_view s) {
  for (size_t i = 0, len = 0; i < s.size(); i += len)
    if (ls::text::utf8_code_point_at(s, i, len) < 0) return false;
  return true;
}

void tc_check_pretokens(std::u32string_view text) {
  std::u32string joined, expected;
  for (const std::u32string& p : ls::text::ClipTokenizer::pretokenize(text)) {
    if (p.empty()) __builtin_trap();
    for (char32_t c : p)
      if (is_white_space(c)) __builtin_trap();
    joined += p;
  }
  for (char32_t c : text)
    if (!is_white_space(c) && c != 0x345) expected.push_back(c);
  if (joined != expected) __builtin_trap();
}

void tc_check_unescape(std::u32string_view u) {
  const std::u32string a = ls::text::html_unescape(u), b = ls::text::ftfy_unescape_html(u);
  if (a.size() > u.size() || b.size() > u.size() || !tc_scalars(a) || !tc_scalars(b)) __builtin_trap();
  if (u.find(U'&') == std::u32string_view::npos && (a != u || b != u)) __builtin_trap();
}

void tc_check_ftfy(const std::u32string& f) {
  using namespace ls::text;
  if (!tc_scalars(f)) __builtin_trap();
  if (fix_c1_controls(f) != f || fix_latin_ligatures(f) != f || fix_character_width(f) != f ||
      uncurl_quotes(f) != f || fix_line_breaks(f) != f || remove_terminal_escapes(f) != f ||
      remove_control_chars(f) != f || nfc(f) != f)
    __builtin_trap();
  if (f.find(U'&') == std::u32string::npos && ftfy_fix_text(f) != f) __builtin_trap();
}

void tc_check_clean(const std::u32string& r) {
  if (!tc_scalars(r) || ls::text::py_lower(r) != r) __builtin_trap();
  if (!r.empty() && (ls::text::py_isspace(r.front()) || ls::text::py_isspace(r.back()))) __builtin_trap();
  for (size_t i = 0; i < r.size(); ++i) {
    if (r[i] < 0x20 || r[i] == 0x7F) __builtin_trap();
    if (is_white_space(r[i]) && (r[i] != U' ' || (i > 0 && r[i - 1] == U' '))) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const std::u32string u = ls::text::utf8_to_u32(bytes);
    const std::string back = ls::text::u32_to_utf8(u);
    if (!tc_scalars(u) || !tc_valid_utf8(back) || (tc_valid_utf8(bytes) && back != bytes)) __builtin_trap();
    tc_check_unescape(u);
    tc_check_pretokens(u);
    const std::u32string f = ls::text::ftfy_fix_text(u);
    tc_check_ftfy(f);
    const std::u32string r = ls::text::clip_clean(bytes);
    tc_check_clean(r);
    tc_check_pretokens(r);
    if (f.find(U'&') == std::u32string::npos &&
        ls::text::clip_clean(ls::text::u32_to_utf8(r)) != ls::text::py_lower(ls::text::nfc(r)))
      __builtin_trap();
  } catch (const ls::Error&) {
  }
  return 0;
}
