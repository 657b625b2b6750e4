// The one mechanism behind every settings file and flag set (training config, dataset config, sheet
// definition, image requests): a table of keys, each with its name, old spellings, type, help and
// the code that reads a value into its field and writes it back as TOML text. A config declares
// its table once; reading a file, reading `--key value` flags, generating flags and help, writing
// the effective config and comparing two configs all walk the same rows. Per-key flags say what
// used to live in side lists: a kohya key taken only to be ignored (and why), a kohya key refused
// unless it holds its off value, a key a resumed run may change.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ls::core {

/// One value as a config gave it: typed when it comes from a TOML file, plain text from the
/// command line (where "false", "0" and "none" mean what they spell).
struct KeyValue {
  enum class Kind { kBool, kInteger, kFloat, kString, kArray, kTable, kOther };
  Kind kind = Kind::kOther;
  bool from_text = false;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;             // kInteger and kFloat
  std::string text;              // kString
  std::vector<KeyValue> items;   // kArray
  std::string shown;             // the value as written, for messages
  bool is_number() const { return kind == Kind::kInteger || kind == Kind::kFloat; }
};
/// A command-line value.
KeyValue text_value(const std::string& text);

/// What a key's field holds; kPath is a string that a file's keys resolve against its folder.
enum class KeyType {
  kString, kPath, kInt, kOptionalInt, kDouble, kOptionalDouble, kBool, kStrings, kResolution, kSeed, kInt64, kCustom
};

// Reading a value into a field: typed values must have the field's type, text is parsed. Errors
// are "<subject> must be <what>, got <shown>".
void read_value(const KeyValue& v, const std::string& subject, std::string& out);
void read_value(const KeyValue& v, const std::string& subject, int& out);
void read_value(const KeyValue& v, const std::string& subject, int64_t& out);
void read_value(const KeyValue& v, const std::string& subject, std::optional<int>& out);
void read_value(const KeyValue& v, const std::string& subject, double& out);
/// kohya's text_encoder_lr is a list (one per encoder): one value, or equal values, fit.
void read_value(const KeyValue& v, const std::string& subject, std::optional<double>& out);
void read_value(const KeyValue& v, const std::string& subject, bool& out);
/// kohya's nargs="*" lists: an array of strings, or one string kept as one entry.
void read_value(const KeyValue& v, const std::string& subject, std::vector<std::string>& out);
/// (width, height): an integer, "W,H" or [W, H], sides in [64, 16384].
void read_value(const KeyValue& v, const std::string& subject, std::array<int, 2>& out);
/// Seeds above 2^63 - 1 do not fit a TOML integer: a decimal string is read too.
void read_value(const KeyValue& v, const std::string& subject, std::optional<uint64_t>& out);

// TOML text of a field's value; "" for an unset optional (the key is then left out).
std::string toml_text(const std::string& v);
std::string toml_text(int v);
std::string toml_text(int64_t v);
std::string toml_text(double v);  // shortest exact text, always a TOML float ("1.0", "2e-06")
std::string toml_text(bool v);
std::string toml_text(const std::array<int, 2>& v);
std::string toml_text(const std::optional<int>& v);
std::string toml_text(const std::optional<double>& v);
std::string toml_text(const std::optional<uint64_t>& v);
std::string toml_text(const std::vector<std::string>& v);

// A field's value as a typed key value (kOther for an unset optional): one table's field handed
// to another table's key without going through text.
KeyValue key_value(const std::string& v);
KeyValue key_value(int v);
KeyValue key_value(int64_t v);
KeyValue key_value(double v);
KeyValue key_value(bool v);
KeyValue key_value(const std::array<int, 2>& v);
KeyValue key_value(const std::optional<int>& v);
KeyValue key_value(const std::optional<double>& v);
KeyValue key_value(const std::optional<uint64_t>& v);
KeyValue key_value(const std::vector<std::string>& v);

constexpr KeyType type_of(const std::string*) { return KeyType::kString; }
constexpr KeyType type_of(const int*) { return KeyType::kInt; }
constexpr KeyType type_of(const int64_t*) { return KeyType::kInt64; }
constexpr KeyType type_of(const std::optional<int>*) { return KeyType::kOptionalInt; }
constexpr KeyType type_of(const double*) { return KeyType::kDouble; }
constexpr KeyType type_of(const std::optional<double>*) { return KeyType::kOptionalDouble; }
constexpr KeyType type_of(const bool*) { return KeyType::kBool; }
constexpr KeyType type_of(const std::vector<std::string>*) { return KeyType::kStrings; }
constexpr KeyType type_of(const std::array<int, 2>*) { return KeyType::kResolution; }
constexpr KeyType type_of(const std::optional<uint64_t>*) { return KeyType::kSeed; }

/// The value a kohya key has when its feature is off: store_true false, 0, 1, None or a fixed
/// text. An empty string is always off (GUIs write None as "").
struct OffValue {
  enum class Kind { kFalse, kZero, kOne, kNone, kText };
  Kind kind = Kind::kNone;
  std::string text;  // kText
};
bool is_off(const OffValue& off, const KeyValue& value);
/// " (or set it to <off value>)", or "" when the off value is None.
std::string off_hint(const OffValue& off);

/// One key of a table over the settings struct T.
template <typename T>
struct Key {
  std::string name;
  KeyType type = KeyType::kCustom;
  std::string help;
  std::vector<std::string> aliases;  // other spellings accepted (old flag names)
  /// Reads a value into the field; empty for a kohya key that is not taken.
  std::function<void(T&, const KeyValue&, const std::string& subject)> set;
  /// The field's value as TOML text ("" = unset); empty for keys that are not written back.
  std::function<std::string(const T&)> text;
  /// The field's value, typed; empty for keys without one field.
  std::function<KeyValue(const T&)> value;
  /// Puts the field back to its default (an empty value in a file or flag means "unset").
  std::function<void(T&)> reset;
  // Per-key flags.
  bool resume_may_change = false;          // outputs, cadence, file locations: not what a run computes
  int level = 0;                           // the table's own grouping (dataset: subset or dataset key)
  std::string ignored;                     // a kohya key that changes nothing here: why
  std::optional<OffValue> refused_unless;  // a kohya key not implemented: taken only at this value

  bool taken() const { return static_cast<bool>(set); }
  bool answers_to(std::string_view n) const {
    if (n == name) return true;
    for (const auto& a : aliases)
      if (n == a) return true;
    return false;
  }
};

/// A key for the member `field` of T: type, reading and writing follow the member's type.
template <typename T, typename F>
Key<T> field_key(std::string name, F T::*field, std::string help, KeyType type = KeyType::kCustom) {
  Key<T> k;
  k.name = std::move(name);
  k.type = type == KeyType::kCustom ? type_of(static_cast<const F*>(nullptr)) : type;
  k.help = std::move(help);
  k.set = [field](T& t, const KeyValue& v, const std::string& subject) { read_value(v, subject, t.*field); };
  k.text = [field](const T& t) { return toml_text(t.*field); };
  k.value = [field](const T& t) { return key_value(t.*field); };
  k.reset = [field](T& t) { t.*field = T{}.*field; };
  return k;
}

/// The same for a member of a member (`caption.keep_tokens`).
template <typename T, typename M, typename F>
Key<T> field_key(std::string name, M T::*outer, F M::*inner, std::string help) {
  Key<T> k;
  k.name = std::move(name);
  k.type = type_of(static_cast<const F*>(nullptr));
  k.help = std::move(help);
  k.set = [outer, inner](T& t, const KeyValue& v, const std::string& subject) { read_value(v, subject, (t.*outer).*inner); };
  k.text = [outer, inner](const T& t) { return toml_text((t.*outer).*inner); };
  k.value = [outer, inner](const T& t) { return key_value((t.*outer).*inner); };
  k.reset = [outer, inner](T& t) { (t.*outer).*inner = M{}.*inner; };
  return k;
}

/// A key of table U, reached through the member `part` of T (a sheet's request fields); the
/// part may be of a type derived from U.
template <typename T, typename U, typename P>
Key<T> part_key(const Key<U>& key, P T::*part) {
  Key<T> k;
  k.name = key.name;
  k.type = key.type;
  k.help = key.help;
  k.aliases = key.aliases;
  if (key.set) k.set = [set = key.set, part](T& t, const KeyValue& v, const std::string& s) { set(t.*part, v, s); };
  if (key.text) k.text = [text = key.text, part](const T& t) { return text(t.*part); };
  if (key.value) k.value = [value = key.value, part](const T& t) { return value(t.*part); };
  if (key.reset) k.reset = [reset = key.reset, part](T& t) { reset(t.*part); };
  k.resume_may_change = key.resume_may_change;
  k.level = key.level;
  k.ignored = key.ignored;
  k.refused_unless = key.refused_unless;
  return k;
}

/// A kohya key that changes nothing in lorastudio: taken, ignored with a note saying why.
template <typename T>
Key<T> ignored_key(std::string name, std::string why) {
  Key<T> k;
  k.name = std::move(name);
  k.ignored = std::move(why);
  return k;
}

/// A kohya key lorastudio does not implement: taken only at its off value, refused otherwise.
template <typename T>
Key<T> refused_key(std::string name, OffValue::Kind off, std::string off_text = "") {
  Key<T> k;
  k.name = std::move(name);
  k.refused_unless = OffValue{off, std::move(off_text)};
  return k;
}

/// Checks after reading: numbers within [lo, hi] ("<subject> must be in [lo, hi], got v"), or at
/// least lo when hi is absent.
/// The number a value holds (text parsed); set() has checked it is one.
double number_of(const KeyValue& v);
void check_range(double value, const std::string& subject, double lo, std::optional<double> hi, const std::string& shown);

template <typename T>
Key<T> within(Key<T> key, double lo, std::optional<double> hi = std::nullopt) {
  key.set = [set = key.set, lo, hi](T& t, const KeyValue& v, const std::string& subject) {
    T checked = t;
    set(checked, v, subject);  // type errors first
    check_range(number_of(v), subject, lo, hi, v.shown);
    t = std::move(checked);  // a value out of range leaves the field as it was
  };
  return key;
}

/// What applying one value to a table did.
enum class Applied {
  kSet,      // a taken key: its field holds the value
  kIgnored,  // a kohya key ignored here (the note is added)
  kOff,      // a refused kohya key at its off value: nothing to do
  kRefused,  // a refused kohya key set to something else: the caller names it in its error
  kUnknown,  // no such key: the caller names it with did_you_mean()
};

template <typename T>
class KeyTable {
 public:
  explicit KeyTable(std::vector<Key<T>> keys) : keys_(std::move(keys)) {}

  const std::vector<Key<T>>& keys() const { return keys_; }
  /// By name or alias; nullptr when none.
  const Key<T>* find(std::string_view name) const {
    for (const Key<T>& k : keys_)
      if (k.answers_to(name)) return &k;
    return nullptr;
  }
  /// The names of the taken keys, in table order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const Key<T>& k : keys_)
      if (k.taken()) out.push_back(k.name);
    return out;
  }
  /// " (did you mean <open>x<close>?)" for the nearest taken key, or "".
  std::string did_you_mean(std::string_view name, const char* open = "'", const char* close = "'") const;

  /// Applies `value` to the key `name` (which `found` receives, nullptr when unknown).
  Applied apply(T& target, std::string_view name, const KeyValue& value, const std::string& subject,
                std::vector<std::string>* notes, const Key<T>** found = nullptr) const {
    const Key<T>* k = find(name);
    if (found) *found = k;
    if (!k) return Applied::kUnknown;
    if (k->taken()) {
      k->set(target, value, subject);
      return Applied::kSet;
    }
    if (!k->ignored.empty()) {
      if (notes) notes->push_back(k->name + ": ignored (" + k->ignored + ")");
      return Applied::kIgnored;
    }
    return k->refused_unless && is_off(*k->refused_unless, value) ? Applied::kOff : Applied::kRefused;
  }

 private:
  std::vector<Key<T>> keys_;
};

/// The nearest of `names` as " (did you mean <open>x<close>?)", or "".
std::string did_you_mean_among(std::string_view name, const std::vector<std::string>& names, const char* open,
                               const char* close);

template <typename T>
std::string KeyTable<T>::did_you_mean(std::string_view name, const char* open, const char* close) const {
  return did_you_mean_among(name, names(), open, close);
}

}  // namespace ls::core
