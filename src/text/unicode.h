// Unicode helpers with Python's semantics, for reproducing OpenAI CLIP's text cleaning in C++:
// UTF-8 <-> UTF-32 (bytes.decode('utf-8', 'replace')), str.lower/upper, str.isspace, the `regex`
// module's \s, \p{L}, \p{N}, and unicodedata.normalize. Character data comes from ICU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ls::text {

/// UTF-8 to code points; each maximal invalid subsequence becomes one U+FFFD, as CPython's
/// `bytes.decode("utf-8", "replace")` does. Encoded surrogates (ED A0..BF ..) are invalid too.
std::u32string utf8_to_u32(std::string_view utf8);
/// Code points to UTF-8 (surrogates and values past U+10FFFF become U+FFFD).
std::string u32_to_utf8(std::u32string_view text);

/// Python `str.lower()` / `str.upper()`: full case mapping (e.g. U+0130 -> "i\u0307",
/// "\u00DF".upper() -> "SS") with the final-sigma rule, locale-independent.
std::u32string py_lower(std::u32string_view text);
std::u32string py_upper(std::u32string_view text);

/// `unicodedata.normalize("NFC" | "NFKC", text)`.
std::u32string nfc(std::u32string_view text);
std::u32string nfkc(std::u32string_view text);

/// Python `str.isspace()` for one character (White_Space plus U+001C..U+001F).
bool py_isspace(char32_t c);
/// Python `str.strip()`: leading and trailing characters for which py_isspace holds. On UTF-8,
/// only well-formed characters count as whitespace; invalid bytes stay where they are.
std::u32string py_strip(std::u32string_view text);
std::string py_strip(std::string_view utf8);
/// The well-formed UTF-8 character starting at s[i]: its code point, and its byte count in len;
/// -1 (len 1) when the bytes there are not one (truncated, overlong, surrogate, stray byte).
int32_t utf8_code_point_at(std::string_view s, size_t i, size_t& len);
/// `\s` of the `regex` module on str patterns: the White_Space property.
bool is_white_space(char32_t c);
/// General category L* (Lu, Ll, Lt, Lm, Lo): `\p{L}`.
bool is_letter(char32_t c);
/// General category N* (Nd, Nl, No): `\p{N}`.
bool is_number(char32_t c);
/// General category Nd: Python `re`'s `\d` on str patterns.
bool is_decimal_digit(char32_t c);

/// The windows-1252 character for U+0080..U+009F read as bytes 0x80..0x9F (0x81, 0x8D, 0x8F,
/// 0x90, 0x9D are unassigned and stay); any other c is returned unchanged. HTML5's numeric
/// references and ftfy's "sloppy-windows-1252" both use this table.
char32_t windows1252_c1(char32_t c);

/// Appends code point c to a UTF-8 string.
void append_utf8(std::string& out, char32_t c);

}  // namespace ls::text
