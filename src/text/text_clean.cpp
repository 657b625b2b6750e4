// CLIP's cleaning (basic_clean, whitespace_clean, lower) and the ftfy fixers it relies on.
// References: openai/CLIP clip/simple_tokenizer.py; rspeer/python-ftfy 6.3.1 ftfy/__init__.py
// (fix_text, fix_and_explain), ftfy/fixes.py, ftfy/chardata.py (LIGATURES, WIDTH_MAP,
// CONTROL_CHARS, quote classes).
#include "text/text_clean.h"

#include <array>

#include "text/html_unescape.h"
#include "text/unicode.h"

namespace ls::text {
namespace {

// ftfy's default max_decode_length: longer lines are fixed in pieces of this many characters.
constexpr size_t kMaxDecodeLength = 1000000;

const char32_t* ligature(char32_t c) {
  switch (c) {
    case 0x0132: return U"IJ";
    case 0x0133: return U"ij";
    case 0x0149: return U"\u02BCn";
    case 0x01F1: return U"DZ";
    case 0x01F2: return U"Dz";
    case 0x01F3: return U"dz";
    case 0x01C4: return U"D\u017D";
    case 0x01C5: return U"D\u017E";
    case 0x01C6: return U"d\u017E";
    case 0x01C7: return U"LJ";
    case 0x01C8: return U"Lj";
    case 0x01C9: return U"lj";
    case 0x01CA: return U"NJ";
    case 0x01CB: return U"Nj";
    case 0x01CC: return U"nj";
    case 0xFB00: return U"ff";
    case 0xFB01: return U"fi";
    case 0xFB02: return U"fl";
    case 0xFB03: return U"ffi";
    case 0xFB04: return U"ffl";
    case 0xFB05: return U"\u017Ft";
    case 0xFB06: return U"st";
    default: return nullptr;
  }
}

// ftfy's WIDTH_MAP: U+3000 -> ' ', and U+FF01..U+FFEF -> their NFKC form where that differs.
struct WidthMap {
  std::array<std::u32string, 0xFFF0 - 0xFF01> forms;
  WidthMap() {
    for (char32_t c = 0xFF01; c < 0xFFF0; ++c) {
      std::u32string one(1, c), alt = nfkc(one);
      if (alt != one) forms[c - 0xFF01] = alt;
    }
  }
};

bool is_removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

std::u32string fix_segment(std::u32string text, bool unescape) {
  while (true) {
    std::u32string orig = text;
    if (unescape) text = ftfy_unescape_html(text);
    text = fix_c1_controls(text);
    text = fix_latin_ligatures(text);
    text = fix_character_width(text);
    text = uncurl_quotes(text);
    text = fix_line_breaks(text);
    text = remove_terminal_escapes(text);
    text = remove_control_chars(text);
    text = nfc(text);
    if (text == orig) return text;
  }
}

}  // namespace

std::u32string fix_c1_controls(std::u32string_view text) {
  std::u32string out(text);
  for (auto& c : out) c = windows1252_c1(c);
  return out;
}

std::u32string fix_latin_ligatures(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (const char32_t* lig = ligature(c)) out += lig;
    else out.push_back(c);
  }
  return out;
}

std::u32string fix_character_width(std::u32string_view text) {
  static const WidthMap map;
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0x3000) out.push_back(U' ');
    else if (c >= 0xFF01 && c < 0xFFF0 && !map.forms[c - 0xFF01].empty()) out += map.forms[c - 0xFF01];
    else out.push_back(c);
  }
  return out;
}

std::u32string uncurl_quotes(std::u32string_view text) {
  std::u32string out(text);
  for (auto& c : out) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
    else if (c >= 0x201C && c <= 0x201F) c = U'"';
  }
  return out;
}

std::u32string fix_line_breaks(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char32_t c = text[i];
    if (c == U'\r') {
      if (i + 1 < text.size() && text[i + 1] == U'\n') ++i;
      out.push_back(U'\n');
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      out.push_back(U'\n');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::u32string remove_terminal_escapes(std::u32string_view text) {
  // ANSI_RE = "\033\[((?:\d|;)*)([a-zA-Z])" with Python re's Unicode \d.
  std::u32string out;
  out.reserve(text.size());
  size_t n = text.size(), i = 0;
  while (i < n) {
    if (text[i] == 0x1B && i + 1 < n && text[i + 1] == U'[') {
      size_t k = i + 2;
      while (k < n && (text[k] == U';' || is_decimal_digit(text[k]))) ++k;
      if (k < n && ((text[k] >= U'a' && text[k] <= U'z') || (text[k] >= U'A' && text[k] <= U'Z'))) {
        i = k + 1;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

std::u32string remove_control_chars(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text)
    if (!is_removed_control(c)) out.push_back(c);
  return out;
}

std::u32string ftfy_fix_text(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  bool unescape = true;  // unescape_html="auto": off once a segment holds a '<'
  size_t pos = 0;
  while (pos < text.size()) {
    size_t brk = text.find(U'\n', pos);
    brk = brk == std::u32string_view::npos ? text.size() : brk + 1;
    if (brk - pos > kMaxDecodeLength) brk = pos + kMaxDecodeLength;
    std::u32string_view segment = text.substr(pos, brk - pos);
    if (unescape && segment.find(U'<') != std::u32string_view::npos) unescape = false;
    out += fix_segment(std::u32string(segment), unescape);
    pos = brk;
  }
  return out;
}

std::u32string clip_clean(std::string_view utf8) {
  std::u32string text = ftfy_fix_text(utf8_to_u32(utf8));
  text = py_strip(html_unescape(html_unescape(text)));
  // whitespace_clean: runs of \s (the regex module's: White_Space) become one space.
  std::u32string collapsed;
  collapsed.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (is_white_space(text[i])) {
      while (i < text.size() && is_white_space(text[i])) ++i;
      collapsed.push_back(U' ');
    } else {
      collapsed.push_back(text[i++]);
    }
  }
  return py_lower(py_strip(collapsed));
}

}  // namespace ls::text
