// Small ASCII string helpers shared by the config readers and writers (one definition each, so
// unity builds and readers agree on what "case-insensitive", "blank" and "quoted" mean).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ls::core {

/// ASCII lower case; other bytes (UTF-8 included) unchanged.
std::string ascii_lower(std::string s);
/// ASCII upper case; other bytes unchanged.
std::string ascii_upper(std::string s);
/// s without leading and trailing spaces, tabs, CR and LF.
std::string trim(std::string_view s);
/// The shortest text that reads back as exactly v ("7", "0.8", "1e-05"), as Python's repr.
std::string format_double(double v);
/// Whole-text number parsing (surrounding blanks allowed); false on anything else.
bool parse_double(std::string_view text, double& out);
bool parse_int64(std::string_view text, int64_t& out);
/// The same, throwing ls::Error "<where>: '<text>' is not a whole number" (or "... a number"; a
/// number must also be finite) for anything else.
int64_t int64_or_fail(std::string_view text, const std::string& where);
double number_or_fail(std::string_view text, const std::string& where);
/// Python's json.dumps(text, ensure_ascii=False): quoted, \\ \" and control characters escaped,
/// UTF-8 passed through.
std::string json_quote(std::string_view text);
/// A TOML basic string: json_quote's escapes with upper-case hex, and DEL escaped too (TOML
/// forbids it raw).
std::string toml_quote(const std::string& text);

}  // namespace ls::core
