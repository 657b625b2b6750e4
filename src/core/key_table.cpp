// Reading and writing key values; see key_table.h.
#include "core/key_table.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "core/error.h"
#include "core/nearest_name.h"
#include "core/strings.h"

namespace ls::core {
namespace {

[[noreturn]] void fail(const std::string& subject, const char* expected, const KeyValue& v,
                       const std::string& detail = "") {
  LS_FAIL(subject, " must be ", expected, detail, ", got ", v.shown);
}

int checked_int(int64_t v, const std::string& subject, const KeyValue& shown) {
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) fail(subject, "a 32-bit integer", shown);
  return static_cast<int>(v);
}

int reso_side(int64_t v, const std::string& subject, const KeyValue& shown) {
  if (v < 64 || v > 16384) fail(subject, "an integer, \"W,H\" or [W, H]", shown, " with sides in [64, 16384]");
  return static_cast<int>(v);
}

bool text_int(const std::string& text, int64_t& out) {
  const std::string t = trim(text);
  if (t.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(t.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

bool text_double(const std::string& text, double& out) {
  const std::string t = trim(text);
  if (t.empty()) return false;
  char* end = nullptr;
  out = std::strtod(t.c_str(), &end);
  return *end == '\0';
}

std::string quote(const std::string& s) { return toml_quote(s); }

}  // namespace

KeyValue text_value(const std::string& text) {
  KeyValue v = key_value(text);
  v.from_text = true;
  v.shown = "'" + text + "'";
  return v;
}

void read_value(const KeyValue& v, const std::string& subject, std::string& out) {
  if (v.kind != KeyValue::Kind::kString) fail(subject, "a string", v);
  out = v.text;
}

void read_value(const KeyValue& v, const std::string& subject, int64_t& out) {
  if (v.from_text) {
    if (!text_int(v.text, out)) fail(subject, "an integer", v);
    return;
  }
  if (v.kind != KeyValue::Kind::kInteger) fail(subject, "an integer", v);
  out = v.integer;
}

void read_value(const KeyValue& v, const std::string& subject, int& out) {
  int64_t wide = 0;
  read_value(v, subject, wide);
  out = checked_int(wide, subject, v);
}

void read_value(const KeyValue& v, const std::string& subject, std::optional<int>& out) {
  int n = 0;
  read_value(v, subject, n);
  out = n;
}

void read_value(const KeyValue& v, const std::string& subject, double& out) {
  if (v.from_text) {
    if (!text_double(v.text, out) || !std::isfinite(out)) fail(subject, "a finite number", v);
    return;
  }
  if (!v.is_number()) fail(subject, "a number", v);
  out = v.number;
  if (!std::isfinite(out)) fail(subject, "a finite number", v);
}

void read_value(const KeyValue& v, const std::string& subject, std::optional<double>& out) {
  if (v.kind != KeyValue::Kind::kArray) {
    double d = 0;
    read_value(v, subject, d);
    out = d;
    return;
  }
  out.reset();
  for (const KeyValue& item : v.items) {
    double d = 0;
    read_value(item, subject, d);
    if (out && *out != d) fail(subject, "a number", v, " (different values per text encoder are not supported)");
    out = d;
  }
}

void read_value(const KeyValue& v, const std::string& subject, bool& out) {
  if (!v.from_text) {
    if (v.kind != KeyValue::Kind::kBool) fail(subject, "true or false", v);
    out = v.boolean;
    return;
  }
  const std::string t = ascii_lower(trim(v.text));
  if (t == "true" || t == "1") {
    out = true;
  } else if (t == "false" || t == "0") {
    out = false;
  } else {
    fail(subject, "true, false, 1 or 0", v);
  }
}

void read_value(const KeyValue& v, const std::string& subject, std::vector<std::string>& out) {
  out.clear();
  if (v.kind == KeyValue::Kind::kString) {  // command-line text: the trainer's parsers split "a=1 b=2"
    out.push_back(v.text);
    return;
  }
  if (v.kind != KeyValue::Kind::kArray) fail(subject, "an array of strings or one string", v);
  for (const KeyValue& item : v.items) {
    if (item.kind != KeyValue::Kind::kString) fail(subject, "an array of strings or one string", v);
    out.push_back(item.text);
  }
}

void read_value(const KeyValue& v, const std::string& subject, std::array<int, 2>& out) {
  constexpr const char* kWhat = "an integer, \"W,H\" or [W, H]";
  if (v.kind == KeyValue::Kind::kInteger) {
    const int side = reso_side(v.integer, subject, v);
    out = {side, side};
  } else if (v.kind == KeyValue::Kind::kString) {
    const size_t comma = v.text.find(',');
    int64_t w = 0, h = 0;
    if (!text_int(v.text.substr(0, comma), w)) fail(subject, kWhat, v);
    h = w;
    if (comma != std::string::npos && !text_int(v.text.substr(comma + 1), h)) fail(subject, kWhat, v);
    out = {reso_side(w, subject, v), reso_side(h, subject, v)};
  } else {
    if (v.kind != KeyValue::Kind::kArray || v.items.size() != 2 || v.items[0].kind != KeyValue::Kind::kInteger ||
        v.items[1].kind != KeyValue::Kind::kInteger)
      fail(subject, kWhat, v);
    out = {reso_side(v.items[0].integer, subject, v), reso_side(v.items[1].integer, subject, v)};
  }
}

void read_value(const KeyValue& v, const std::string& subject, std::optional<uint64_t>& out) {
  if (v.kind == KeyValue::Kind::kString) {
    const std::string t = trim(v.text);
    if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos) fail(subject, "a non-negative integer", v);
    errno = 0;
    const unsigned long long n = std::strtoull(t.c_str(), nullptr, 10);
    if (errno != 0) fail(subject, "a non-negative integer", v, " below 2^64");
    out = n;
    return;
  }
  if (v.kind != KeyValue::Kind::kInteger || v.integer < 0) fail(subject, "a non-negative integer", v);
  out = static_cast<uint64_t>(v.integer);
}

std::string toml_text(const std::string& v) { return quote(v); }
std::string toml_text(int v) { return std::to_string(v); }
std::string toml_text(int64_t v) { return std::to_string(v); }
std::string toml_text(bool v) { return v ? "true" : "false"; }
std::string toml_text(const std::array<int, 2>& v) { return quote(str_cat(v[0], ",", v[1])); }
std::string toml_text(const std::optional<int>& v) { return v ? toml_text(*v) : ""; }
std::string toml_text(const std::optional<double>& v) { return v ? toml_text(*v) : ""; }

std::string toml_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {  // the shortest "%.*g" that reads back exactly
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";  // a TOML float, not an integer
  return s;
}

std::string toml_text(const std::optional<uint64_t>& v) {
  if (!v) return "";
  const std::string digits = std::to_string(*v);
  return *v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? digits : quote(digits);
}

std::string toml_text(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + quote(v[i]);
  return out + "]";
}

namespace {
KeyValue typed(KeyValue::Kind kind, std::string shown) {
  KeyValue out;
  out.kind = kind;
  out.shown = std::move(shown);
  return out;
}
}  // namespace

KeyValue key_value(const std::string& v) {
  KeyValue out = typed(KeyValue::Kind::kString, quote(v));
  out.text = v;
  return out;
}

KeyValue key_value(int64_t v) {
  KeyValue out = typed(KeyValue::Kind::kInteger, std::to_string(v));
  out.integer = v;
  out.number = static_cast<double>(v);
  return out;
}

KeyValue key_value(int v) { return key_value(static_cast<int64_t>(v)); }

KeyValue key_value(double v) {
  KeyValue out = typed(KeyValue::Kind::kFloat, toml_text(v));
  out.number = v;
  return out;
}

KeyValue key_value(bool v) {
  KeyValue out = typed(KeyValue::Kind::kBool, toml_text(v));
  out.boolean = v;
  return out;
}

KeyValue key_value(const std::array<int, 2>& v) {
  KeyValue out = typed(KeyValue::Kind::kArray, str_cat("[", v[0], ", ", v[1], "]"));
  out.items = {key_value(v[0]), key_value(v[1])};
  return out;
}

KeyValue key_value(const std::optional<int>& v) { return v ? key_value(*v) : KeyValue{}; }
KeyValue key_value(const std::optional<double>& v) { return v ? key_value(*v) : KeyValue{}; }

KeyValue key_value(const std::optional<uint64_t>& v) {
  if (!v) return KeyValue{};
  if (*v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return key_value(static_cast<int64_t>(*v));
  return key_value(std::to_string(*v));
}

KeyValue key_value(const std::vector<std::string>& v) {
  KeyValue out = typed(KeyValue::Kind::kArray, toml_text(v));
  for (const std::string& s : v) out.items.push_back(key_value(s));
  return out;
}

bool is_off(const OffValue& off, const KeyValue& v) {
  const bool is_string = v.kind == KeyValue::Kind::kString;
  if (is_string && v.text.empty()) return true;  // GUIs write None as ""
  // TOML values are typed ("false" the string is truthy in kohya); command-line text is not.
  const bool text = is_string && v.from_text;
  double number = 0;
  const bool text_number = text && text_double(v.text, number);
  switch (off.kind) {
    case OffValue::Kind::kFalse:
      return (v.kind == KeyValue::Kind::kBool && !v.boolean) || (text && (ascii_lower(v.text) == "false" || v.text == "0"));
    case OffValue::Kind::kZero:
    case OffValue::Kind::kOne: {
      const double target = off.kind == OffValue::Kind::kZero ? 0.0 : 1.0;
      return (v.is_number() && v.number == target) || (text_number && number == target);
    }
    case OffValue::Kind::kNone: return text && ascii_lower(v.text) == "none";
    case OffValue::Kind::kText: return is_string && v.text == off.text;
  }
  return false;
}

std::string off_hint(const OffValue& off) {
  switch (off.kind) {
    case OffValue::Kind::kFalse: return " (or set it to false)";
    case OffValue::Kind::kZero: return " (or set it to 0)";
    case OffValue::Kind::kOne: return " (or set it to 1)";
    case OffValue::Kind::kNone: return "";
    case OffValue::Kind::kText: return str_cat(" (or set it to \"", off.text, "\")");
  }
  return "";
}

double number_of(const KeyValue& v) {
  double d = v.number;
  if (v.from_text) text_double(v.text, d);
  return d;
}

void check_range(double value, const std::string& subject, double lo, std::optional<double> hi, const std::string& shown) {
  if (hi) {
    LS_CHECK(value >= lo && value <= *hi, subject, " must be in [", format_double(lo), ", ", format_double(*hi), "], got ",
             shown);
  } else {
    LS_CHECK(value >= lo, subject, " must be at least ", format_double(lo), ", got ", shown);
  }
}

std::string did_you_mean_among(std::string_view name, const std::vector<std::string>& names, const char* open,
                               const char* close) {
  const std::string best = nearest_name(name, names);
  return best.empty() ? std::string() : str_cat(" (did you mean ", open, best, close, "?)");
}

}  // namespace ls::core
