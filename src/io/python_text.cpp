// Python's text of values (CPython Objects/floatobject.c float_repr via PyOS_double_to_string 'r',
// Lib/json/encoder.py with ensure_ascii, ast.literal_eval + str); see python_text.h.
#include "io/python_text.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "core/strings.h"

namespace ls::io {

std::string python_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // The shortest round-trip digits, then CPython's layout: fixed notation while the decimal
  // point sits in (-4, 16] digits from the first one, else d.ddde+XX with two exponent digits.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string sci(buf, r.ptr);  // "-1.2345e-05", "0e+00"
  const size_t e_at = sci.find('e');
  std::string sign, digits;
  for (size_t i = 0; i < e_at; ++i) {
    if (sci[i] == '-') sign = "-";
    else if (sci[i] != '.') digits += sci[i];
  }
  const int exponent = std::atoi(sci.c_str() + e_at + 1);
  const int decpt = exponent + 1;  // value = 0.<digits> x 10^decpt
  const auto n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return sign + "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    if (decpt >= n) return sign + digits + std::string(static_cast<size_t>(decpt - n), '0') + ".0";
    return sign + digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
  }
  std::string out = sign + digits.substr(0, 1);
  if (n > 1) out += "." + digits.substr(1);
  char e[16];
  std::snprintf(e, sizeof e, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + e;
}

namespace {

// A recursive reader of the literal subset python_literal_str takes; `ok_` false on anything else.
class PyLiteralReader {
 public:
  explicit PyLiteralReader(std::string_view s) : s_(s) {}

  // The whole text: one value, or a bare tuple ("0.9, 0.99"); str() of a lone string is the
  // string itself, of anything else its repr.
  std::string top(bool& ok) {
    bool comma = false;
    const std::vector<Lit> items = sequence('\0', comma);
    skip_blanks();
    ok = ok_ && i_ == s_.size() && !items.empty();
    if (!ok) return {};
    if (comma) return tuple_text(items);
    return items.front().is_string ? items.front().text : items.front().repr;
  }

 private:
  struct Lit {
    std::string repr;
    bool is_string = false;
    std::string text;  // a string's value
  };
  static Lit plain(std::string repr) {
    Lit lit;
    lit.repr = std::move(repr);
    return lit;
  }

  void skip_blanks() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }

  // Comma-separated values up to `end` ('\0': the end of the text), a trailing comma allowed.
  std::vector<Lit> sequence(char end, bool& comma) {
    std::vector<Lit> items;
    while (ok_) {
      skip_blanks();
      if (i_ == s_.size() ? end == '\0' : s_[i_] == end) break;
      items.push_back(value());
      skip_blanks();
      if (i_ < s_.size() && s_[i_] == ',') {
        comma = true;
        ++i_;
      } else {
        break;
      }
    }
    skip_blanks();
    if (end != '\0') {
      if (i_ < s_.size() && s_[i_] == end) ++i_;
      else ok_ = false;
    }
    return items;
  }

  static std::string joined(const std::vector<Lit>& items) {
    std::string out;
    for (size_t k = 0; k < items.size(); ++k) out += (k ? ", " : "") + items[k].repr;
    return out;
  }
  static std::string tuple_text(const std::vector<Lit>& items) {
    return items.size() == 1 ? "(" + items.front().repr + ",)" : "(" + joined(items) + ")";
  }

  Lit value() {
    skip_blanks();
    if (i_ >= s_.size()) return fail();
    const char c = s_[i_];
    if (c == '(' || c == '[') {
      ++i_;
      bool comma = false;
      const std::vector<Lit> items = sequence(c == '(' ? ')' : ']', comma);
      if (c == '[') return plain("[" + joined(items) + "]");
      if (items.size() == 1 && !comma) return items.front();  // parentheses around one value
      return plain(tuple_text(items));
    }
    if (c == '\'' || c == '"') return quoted(c);
    size_t j = i_;
    while (j < s_.size() && s_[j] != ',' && s_[j] != ')' && s_[j] != ']' && s_[j] != ' ' && s_[j] != '\t') ++j;
    const std::string word(s_.substr(i_, j - i_));
    i_ = j;
    if (word == "True" || word == "False" || word == "None") return plain(word);
    return number(word);
  }

  Lit number(const std::string& word) {
    if (word.find_first_of(".eE") == std::string::npos) {
      // Python 3 refuses leading zeros ("007"); one sign may precede the digits.
      const size_t d = word.find_first_not_of("+-");
      if (d == std::string::npos || d > 1 || (word.size() - d > 1 && word[d] == '0')) return fail();
      int64_t v = 0;
      if (!core::parse_int64(word, v)) return fail();
      return plain(std::to_string(v));
    }
    double v = 0;
    if (word.find_first_not_of("+-0123456789.eE") != std::string::npos || !core::parse_double(word, v)) return fail();
    return plain(python_float(v));
  }

  // 'text' or "text" with \\, \', \", \n, \t; repr() quotes with ' unless the text holds ' only.
  Lit quoted(char q) {
    Lit lit;
    lit.is_string = true;
    for (++i_; i_ < s_.size() && s_[i_] != q; ++i_) {
      char c = s_[i_];
      if (c == '\\' && i_ + 1 < s_.size()) {
        const char n = s_[++i_];
        c = n == 'n' ? '\n' : n == 't' ? '\t' : n;
      }
      lit.text += c;
    }
    if (i_ >= s_.size()) return fail();
    ++i_;
    const bool single = lit.text.find('\'') == std::string::npos || lit.text.find('"') != std::string::npos;
    lit.repr = single ? "'" : "\"";
    for (char c : lit.text) {
      if (c == '\\') lit.repr += "\\\\";
      else if (c == '\n') lit.repr += "\\n";
      else if (c == '\t') lit.repr += "\\t";
      else if (single && c == '\'') lit.repr += "\\'";
      else lit.repr += c;
    }
    lit.repr += single ? '\'' : '"';
    return lit;
  }

  Lit fail() {
    ok_ = false;
    return {};
  }

  std::string_view s_;
  size_t i_ = 0;
  bool ok_ = true;
};

}  // namespace

std::string python_literal_str(std::string_view text) {
  const std::string trimmed = core::trim(text);
  PyLiteralReader reader(trimmed);
  bool ok = false;
  std::string out = reader.top(ok);
  if (!ok) return trimmed;
  return out;
}

namespace {

// The code points of UTF-8 text (metadata strings were checked when read); a stray byte stands
// for itself, as latin-1 would read it, so nothing is lost.
std::vector<uint32_t> py_json_code_points(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + static_cast<size_t>(len) > s.size()) {
      out.push_back(b);
      ++i;
      continue;
    }
    uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1Fu) : len == 3 ? (b & 0x0Fu) : (b & 0x07u);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3Fu);
    out.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return out;
}

// json.encoder.py_encode_basestring_ascii.
std::string py_json_string(const std::string& s) {
  std::string out = "\"";
  char buf[16];
  for (uint32_t c : py_json_code_points(s)) {
    switch (c) {
      case '\\': out += "\\\\"; continue;
      case '"': out += "\\\""; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (c >= 0x20 && c <= 0x7E) {
      out += static_cast<char>(c);
    } else if (c <= 0xFFFF) {
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      const uint32_t v = c - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      out += buf;
    }
  }
  return out + "\"";
}

void py_json_append(std::string& out, const nlohmann::ordered_json& v) {
  using T = nlohmann::ordered_json::value_t;
  switch (v.type()) {
    case T::null: out += "null"; return;
    case T::boolean: out += v.get<bool>() ? "true" : "false"; return;
    case T::number_integer: out += std::to_string(v.get<int64_t>()); return;
    case T::number_unsigned: out += std::to_string(v.get<uint64_t>()); return;
    case T::number_float: {
      const double d = v.get<double>();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : python_float(d);
      return;
    }
    case T::string: out += py_json_string(v.get_ref<const std::string&>()); return;
    case T::array: {
      out += "[";
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += ", ";
        first = false;
        py_json_append(out, item);
      }
      out += "]";
      return;
    }
    case T::object: {
      out += "{";
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        if (!first) out += ", ";
        first = false;
        out += py_json_string(key) + ": ";
        py_json_append(out, item);
      }
      out += "}";
      return;
    }
    default: LS_FAIL("python_json_dumps: a value JSON cannot hold (binary or discarded)");
  }
}

}  // namespace

std::string python_json_dumps(const nlohmann::ordered_json& value) {
  std::string out;
  py_json_append(out, value);
  return out;
}

}  // namespace ls::io
