// TOML nodes as key values; see toml_value.h.
#include "core/toml_value.h"

#include <sstream>

#include "core/error.h"
#include "core/strings.h"

namespace ls::core {
namespace {

std::string render(const toml::node& n) {
  if (n.is_table()) return "a table";
  if (n.is_string()) return toml_quote(*n.value<std::string>());
  if (const toml::array* a = n.as_array()) {
    std::string out = "[";
    for (size_t i = 0; i < a->size(); ++i) out += (i ? ", " : "") + render((*a)[i]);
    return out + "]";
  }
  std::ostringstream out;
  n.visit([&](auto&& v) { out << v; });
  return out.str();
}

}  // namespace

KeyValue toml_value(const toml::node& n) {
  KeyValue v;
  v.shown = render(n);
  if (n.is_boolean()) {
    v.kind = KeyValue::Kind::kBool;
    v.boolean = *n.value<bool>();
  } else if (n.is_integer()) {
    v.kind = KeyValue::Kind::kInteger;
    v.integer = *n.value<int64_t>();
    v.number = static_cast<double>(v.integer);
  } else if (n.is_floating_point()) {
    v.kind = KeyValue::Kind::kFloat;
    v.number = *n.value<double>();
  } else if (n.is_string()) {
    v.kind = KeyValue::Kind::kString;
    v.text = *n.value<std::string>();
  } else if (const toml::array* a = n.as_array()) {
    v.kind = KeyValue::Kind::kArray;
    for (const toml::node& item : *a) v.items.push_back(toml_value(item));
  } else if (n.is_table()) {
    v.kind = KeyValue::Kind::kTable;
  }
  return v;
}

std::string toml_place(const std::string& file, const toml::node& node) {
  return str_cat(file, ":", node.source().begin.line);
}

}  // namespace ls::core
