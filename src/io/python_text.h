// The text Python gives values, for metadata that kohya-ss/sd-scripts writes as str(value) and
// json.dumps(value) (train_network.py's ss_* keys): float repr, str(ast.literal_eval(text)), and
// json.dumps with its defaults (", " and ": " separators, ensure_ascii, keys in insertion order).
// A reader that compares such metadata by text (model sites, A1111's LoRA dialog) sees the same.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ls::io {

/// Python's repr(float) / str(float): the shortest text that reads back as v, fixed notation
/// with a ".0" when the decimal exponent is in [-4, 16) ("1.0", "0.0001", "1e-05", "1e+16"),
/// "inf", "-inf", "nan".
std::string python_float(double v);

/// str(True) / str(False).
inline std::string python_bool(bool v) { return v ? "True" : "False"; }

/// str(ast.literal_eval(text)) for the literals optimizer arguments hold: ints, floats, True /
/// False / None, quoted strings, tuples and lists of them ("1e-3" -> "0.001", "0.9,0.99" ->
/// "(0.9, 0.99)"). Text that is no such literal comes back trimmed but otherwise as given.
std::string python_literal_str(std::string_view text);

/// json.dumps(value): objects keep their insertion order (use nlohmann::ordered_json), floats as
/// python_float (NaN, Infinity, -Infinity as Python writes them), strings with every character
/// outside printable ASCII escaped as \uXXXX (surrogate pairs past U+FFFF).
std::string python_json_dumps(const nlohmann::ordered_json& value);

}  // namespace ls::io
