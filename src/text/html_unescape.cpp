// Python's html.unescape and ftfy's unescape_html, character for character (see the header).
#include "text/html_unescape.h"

#include <unordered_map>

#include "text/html_entities.h"
#include "text/unicode.h"

namespace ls::text {
namespace {

bool is_ascii_digit(char32_t c) { return c >= U'0' && c <= U'9'; }
bool is_ascii_hex(char32_t c) {
  return is_ascii_digit(c) || (c >= U'a' && c <= U'f') || (c >= U'A' && c <= U'F');
}
bool is_ascii_alnum(char32_t c) {
  return is_ascii_digit(c) || (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
}
int hex_value(char32_t c) {
  if (is_ascii_digit(c)) return static_cast<int>(c - U'0');
  if (c >= U'a' && c <= U'f') return static_cast<int>(c - U'a' + 10);
  return static_cast<int>(c - U'A' + 10);
}

// CPython's _invalid_codepoints: references to these decode to nothing.
bool is_invalid_codepoint(char32_t c) {
  return (c >= 0x1 && c <= 0x8) || c == 0xB || (c >= 0xE && c <= 0x1F) || (c >= 0x7F && c <= 0x9F) ||
         (c >= 0xFDD0 && c <= 0xFDEF) || (c & 0xFFFE) == 0xFFFE;
}

// `num` saturates above 0x10FFFF (Python's int is unbounded; only "> 0x10FFFF" matters).
std::u32string numeric_reference(char32_t num) {
  if (num == 0) return U"\uFFFD";
  if (num == 0x0D) return U"\r";
  if (num >= 0x80 && num <= 0x9F) return std::u32string(1, windows1252_c1(num));
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return U"\uFFFD";
  if (is_invalid_codepoint(num)) return U"";
  return std::u32string(1, num);
}

void accumulate(char32_t& num, int base, int digit) {
  if (num > 0x10FFFF) return;  // saturated
  num = num * static_cast<char32_t>(base) + static_cast<char32_t>(digit);
}

// The named branch of CPython's _replace_charref: exact key, else the longest known prefix of
// at least 2 characters, else the text unchanged.
std::u32string named_reference(const std::u32string& s) {
  if (const auto* v = html5_entity(s)) return *v;
  for (size_t x = s.size() - 1; x > 1; --x) {
    if (const auto* v = html5_entity(std::u32string_view(s).substr(0, x))) return *v + s.substr(x);
  }
  return U"&" + s;
}

bool named_char_allowed(char32_t c) {  // [^\t\n\f <&#;]
  return c != U'\t' && c != U'\n' && c != U'\f' && c != U' ' && c != U'<' && c != U'&' && c != U'#' &&
         c != U';';
}

// ftfy's chardata.HTML_ENTITIES: "&name;" for every html5 name with ';', plus "&NAME;" -> the
// uppercased value for lowercase names whose all-caps spelling html.unescape leaves alone.
std::unordered_map<std::u32string, std::u32string> build_ftfy_entities() {
  std::unordered_map<std::u32string, std::u32string> map;
  for_each_html5_entity([&](const std::u32string& name, const std::u32string& value) {
    if (name.back() != U';') return;
    map[U"&" + name] = value;
    std::u32string lower = name, upper = name;
    for (auto& c : lower)
      if (c >= U'A' && c <= U'Z') c += 32;
    if (lower != name) return;
    for (auto& c : upper)
      if (c >= U'a' && c <= U'z') c -= 32;
    std::u32string entity_upper = U"&" + upper;
    if (html_unescape(entity_upper) == entity_upper) map[entity_upper] = py_upper(value);
  });
  return map;
}

}  // namespace

std::u32string html_unescape(std::u32string_view t) {
  if (t.find(U'&') == std::u32string_view::npos) return std::u32string(t);
  std::u32string out;
  out.reserve(t.size());
  size_t n = t.size(), i = 0;
  while (i < n) {
    if (t[i] != U'&') {
      out.push_back(t[i++]);
      continue;
    }
    size_t j = i + 1;
    if (j < n && t[j] == U'#') {
      size_t k = j + 1;
      char32_t num = 0;
      bool hex = k < n && (t[k] == U'x' || t[k] == U'X');
      if (hex) ++k;
      size_t digits_start = k;
      while (k < n && (hex ? is_ascii_hex(t[k]) : is_ascii_digit(t[k]))) accumulate(num, hex ? 16 : 10, hex_value(t[k++]));
      if (k == digits_start) {  // "&#" or "&#x" without digits: no reference here
        out.push_back(t[i++]);
        continue;
      }
      if (k < n && t[k] == U';') ++k;
      out += numeric_reference(num);
      i = k;
      continue;
    }
    size_t k = j;
    while (k < n && k - j < 32 && named_char_allowed(t[k])) ++k;
    if (k == j) {
      out.push_back(t[i++]);
      continue;
    }
    std::u32string s(t.substr(j, k - j));
    if (k < n && t[k] == U';') s.push_back(t[k++]);
    out += named_reference(s);
    i = k;
  }
  return out;
}

std::u32string ftfy_unescape_html(std::u32string_view t) {
  static const auto entities = build_ftfy_entities();
  std::u32string out;
  out.reserve(t.size());
  size_t n = t.size(), i = 0;
  while (i < n) {
    if (t[i] == U'&') {  // &#?[0-9A-Za-z]{1,24};
      size_t k = i + 1;
      if (k < n && t[k] == U'#') ++k;
      size_t m = k;
      while (m < n && m - k <= 24 && is_ascii_alnum(t[m])) ++m;
      if (m > k && m - k <= 24 && m < n && t[m] == U';') {
        std::u32string match(t.substr(i, m + 1 - i));
        auto it = entities.find(match);
        if (it != entities.end()) {
          out += it->second;
        } else if (match[1] == U'#') {
          // Keep the text when html.unescape decoded only part of it (the ';' survived).
          std::u32string decoded = html_unescape(match);
          out += decoded.find(U';') == std::u32string::npos ? decoded : match;
        } else {
          out += match;
        }
        i = m + 1;
        continue;
      }
    }
    out.push_back(t[i++]);
  }
  return out;
}

}  // namespace ls::text
