// ASCII string helpers; see strings.h.
#include "core/strings.h"

#include "core/error.h"

#include <charconv>
#include <cstdio>
#include <cmath>

namespace ls::core {

std::string ascii_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string ascii_upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

namespace {

/// from_chars over the whole trimmed text; a leading '+' is accepted as in Python.
template <class T>
bool parse_whole(std::string_view text, T& out) {
  const std::string t = trim(text);
  if (t.empty()) return false;
  const char* b = t.data();
  if (*b == '+') ++b;
  const auto r = std::from_chars(b, t.data() + t.size(), out);
  return r.ec == std::errc() && r.ptr == t.data() + t.size();
}

}  // namespace

bool parse_double(std::string_view text, double& out) { return parse_whole(text, out); }

bool parse_int64(std::string_view text, int64_t& out) { return parse_whole(text, out); }

int64_t int64_or_fail(std::string_view text, const std::string& where) {
  int64_t v = 0;
  LS_CHECK(parse_int64(text, v), where, ": '", text, "' is not a whole number");
  return v;
}

double number_or_fail(std::string_view text, const std::string& where) {
  double v = 0;
  LS_CHECK(parse_double(text, v) && std::isfinite(v), where, ": '", text, "' is not a number");
  return v;
}

namespace {

// JSON's escapes (\" \\ \b \t \n \f \r, \u00xx for other control characters); UTF-8 passes through.
// TOML basic strings take the same escapes and forbid a raw DEL as well (written \u007F: lorastudio's
// TOML has always used upper-case hex; json.dumps writes lower case).
std::string quote_escaped(std::string_view text, bool toml) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || (toml && c == 0x7F)) {
          char buf[8];
          std::snprintf(buf, sizeof buf, toml ? "\\u%04X" : "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

}  // namespace

std::string json_quote(std::string_view text) { return quote_escaped(text, false); }
std::string toml_quote(const std::string& text) { return quote_escaped(text, true); }

}  // namespace ls::core
