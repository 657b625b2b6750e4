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

std::string toml_quote(const std::string& text) {
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
        if (c < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out += ch;  // UTF-8 passes through
        }
    }
  }
  return out + "\"";
}

}  // namespace ls::core
