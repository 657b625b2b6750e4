// Unicode helpers with Python's semantics (see unicode.h); ICU supplies the character data.
#include "text/unicode.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include "core/error.h"

namespace ls::text {
namespace {

icu::UnicodeString to_icu(std::u32string_view text) {
  return icu::UnicodeString::fromUTF32(reinterpret_cast<const UChar32*>(text.data()),
                                       static_cast<int32_t>(text.size()));
}

std::u32string from_icu(const icu::UnicodeString& s) {
  UErrorCode status = U_ZERO_ERROR;
  int32_t n = s.toUTF32(nullptr, 0, status);  // preflight
  std::u32string out(static_cast<size_t>(n), U'\0');
  status = U_ZERO_ERROR;
  s.toUTF32(reinterpret_cast<UChar32*>(out.data()), n, status);
  LS_CHECK(U_SUCCESS(status), "ICU UTF-32 conversion failed: ", u_errorName(status));
  return out;
}

std::u32string normalize(std::u32string_view text, const icu::Normalizer2* (*instance)(UErrorCode&)) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* norm = instance(status);
  LS_CHECK(U_SUCCESS(status), "ICU normaliser unavailable: ", u_errorName(status));
  icu::UnicodeString src = to_icu(text);
  if (norm->isNormalized(src, status) && U_SUCCESS(status)) return std::u32string(text);
  status = U_ZERO_ERROR;
  icu::UnicodeString out = norm->normalize(src, status);
  LS_CHECK(U_SUCCESS(status), "ICU normalisation failed: ", u_errorName(status));
  return from_icu(out);
}

bool is_cont(unsigned char b) { return (b & 0xC0) == 0x80; }

}  // namespace

std::u32string utf8_to_u32(std::string_view utf8) {
  std::u32string out;
  out.reserve(utf8.size());
  const auto* s = reinterpret_cast<const unsigned char*>(utf8.data());
  size_t n = utf8.size(), i = 0;
  while (i < n) {
    unsigned char b = s[i];
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    // Sequence length and the allowed range of the first continuation byte (Unicode table 3-7),
    // so that overlongs and surrogates are rejected at the byte where they become invalid.
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b == 0xE0) len = 3, lo = 0xA0;
    else if (b >= 0xE1 && b <= 0xEC) len = 3;
    else if (b == 0xED) len = 3, hi = 0x9F;
    else if (b >= 0xEE && b <= 0xEF) len = 3;
    else if (b == 0xF0) len = 4, lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3) len = 4;
    else if (b == 0xF4) len = 4, hi = 0x8F;
    if (len == 0) {  // stray continuation byte or impossible lead byte
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = b & (0x7F >> len);
    size_t k = 1;
    for (; k < static_cast<size_t>(len); ++k) {
      if (i + k >= n) break;
      unsigned char c = s[i + k];
      bool ok = k == 1 ? (c >= lo && c <= hi) : is_cont(c);
      if (!ok) break;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (k == static_cast<size_t>(len)) {
      out.push_back(cp);
    } else {
      out.push_back(0xFFFD);  // one replacement for the maximal valid prefix
    }
    i += k;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) c = 0xFFFD;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string u32_to_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) append_utf8(out, c);
  return out;
}

std::u32string py_lower(std::u32string_view text) {
  bool ascii = true;
  for (char32_t c : text) ascii = ascii && c < 0x80;
  if (ascii) {  // the common case, without the round trip through UTF-16
    std::u32string out(text);
    for (auto& c : out)
      if (c >= U'A' && c <= U'Z') c += 32;
    return out;
  }
  icu::UnicodeString s = to_icu(text);
  s.toLower(icu::Locale::getRoot());
  return from_icu(s);
}

std::u32string py_upper(std::u32string_view text) {
  icu::UnicodeString s = to_icu(text);
  s.toUpper(icu::Locale::getRoot());
  return from_icu(s);
}

std::u32string nfc(std::u32string_view text) {
  bool below_combining = true;  // nothing under U+0300 changes under NFC
  for (char32_t c : text) below_combining = below_combining && c < 0x300;
  if (below_combining) return std::u32string(text);
  return normalize(text, &icu::Normalizer2::getNFCInstance);
}
std::u32string nfkc(std::u32string_view text) { return normalize(text, &icu::Normalizer2::getNFKCInstance); }

char32_t windows1252_c1(char32_t c) {
  static constexpr char16_t kHigh[32] = {
      0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
  return c >= 0x80 && c <= 0x9F ? kHigh[c - 0x80] : c;
}

bool is_white_space(char32_t c) {
  // The White_Space property has been stable since Unicode 6.3; spelled out so results do not
  // depend on the ICU version.
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool py_isspace(char32_t c) { return is_white_space(c) || (c >= 0x1C && c <= 0x1F); }

int32_t utf8_code_point_at(std::string_view s, size_t i, size_t& len) {
  len = 1;
  const auto b = static_cast<uint8_t>(s[i]);
  if (b < 0x80) return b;
  const size_t n = b >= 0xF8 ? 0 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return -1;
  int32_t cp = b & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<uint8_t>(s[i + k]);
    if ((c & 0xC0) != 0x80) return -1;
    cp = cp << 6 | (c & 0x3F);
  }
  static constexpr int32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  len = n;
  return cp;
}

std::u32string py_strip(std::u32string_view text) {
  size_t b = 0, e = text.size();
  while (b < e && py_isspace(text[b])) ++b;
  while (e > b && py_isspace(text[e - 1])) --e;
  return std::u32string(text.substr(b, e - b));
}

std::string py_strip(std::string_view s) {
  size_t begin = 0, end = s.size(), len = 1;
  auto space_at = [&](size_t i) {
    const int32_t cp = utf8_code_point_at(s, i, len);
    return cp >= 0 && py_isspace(static_cast<char32_t>(cp));
  };
  while (begin < end && space_at(begin)) begin += len;
  while (end > begin) {
    size_t start = end - 1;  // back over continuation bytes to the start of the last character
    while (start > begin && end - start < 4 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    if (!space_at(start) || start + len != end) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

bool is_letter(char32_t c) {
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_L_MASK) != 0;
}

bool is_number(char32_t c) {
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0;
}

bool is_decimal_digit(char32_t c) { return u_charType(static_cast<UChar32>(c)) == U_DECIMAL_DIGIT_NUMBER; }

}  // namespace ls::text
