// kohya's `--optimizer_args` strings ("key=value", values as Python literals) split and typed.
// Matches kohya-ss/sd-scripts library/train_util.py get_optimizer: `key, value = arg.split("=")`,
// `ast.literal_eval(value)`; the optimizer then rejects unknown keys (here: named in the error).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ls::train {

struct OptimizerArg {
  std::string key;
  std::string value;  // the literal as written, trimmed
};

/// Splits kohya's optimizer_args into key/value pairs. Each entry is one "key=value"; an entry may
/// also hold several separated by spaces ("a=1 b=2"); a space-separated piece without '=' belongs
/// to the value before it, so "eps=(1e-30, 1e-3)" stays one value. Duplicate keys are an error.
std::vector<OptimizerArg> split_optimizer_args(const std::vector<std::string>& args);

/// Python float/int literal ("1e-3", "-0.8", "2"); `what` names the optimizer in errors.
double arg_double(const OptimizerArg& arg, const std::string& what);
/// Python int literal ("11", "-2"); a float such as "11.0" is refused (Python would not slice by it).
int64_t arg_int(const OptimizerArg& arg, const std::string& what);
/// Python bool literal: True/False (also true/false, 1/0).
bool arg_bool(const OptimizerArg& arg, const std::string& what);
/// A float literal, or None.
std::optional<double> arg_optional_double(const OptimizerArg& arg, const std::string& what);
/// A tuple of n floats: "1e-30,1e-3" or "(1e-30, 1e-3)" (or "[...]").
std::vector<double> arg_doubles(const OptimizerArg& arg, size_t n, const std::string& what);

/// The error for a key the optimizer does not take, listing the ones it does.
[[noreturn]] void fail_unknown_arg(const OptimizerArg& arg, const std::string& what,
                                   const std::vector<std::string>& valid_keys);

}  // namespace ls::train
