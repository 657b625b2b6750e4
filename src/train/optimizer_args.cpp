// kohya optimizer_args parsing (kohya-ss/sd-scripts library/train_util.py get_optimizer).
#include "train/optimizer_args.h"

#include <cerrno>
#include <cstdlib>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/strings.h"

namespace ls::train {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// ast.literal_eval accepts decimal ints and floats with an optional sign; strtod alone would
// also take "inf", "nan" and hex floats, which Python rejects.
bool parse_python_float(const std::string& text, double& out) {
  std::string s = core::trim(text);
  if (s.empty() || s.find_first_not_of("0123456789.eE+-") != std::string::npos) return false;
  if (s.find_first_of("0123456789") == std::string::npos) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno != ERANGE;
}

}  // namespace

std::vector<OptimizerArg> split_optimizer_args(const std::vector<std::string>& args) {
  std::vector<std::string> pieces;
  for (const auto& entry : args) {
    std::istringstream words(entry);
    std::string word;
    while (words >> word) {
      if (word.find('=') == std::string::npos && !pieces.empty()) {
        pieces.back() += " " + word;
      } else {
        pieces.push_back(word);
      }
    }
  }
  std::vector<OptimizerArg> out;
  std::set<std::string> seen;
  for (const auto& piece : pieces) {
    size_t eq = piece.find('=');
    LS_CHECK(eq != std::string::npos && piece.find('=', eq + 1) == std::string::npos,
             "optimizer_args: '", piece, "' must be key=value (e.g. weight_decay=0.01)");
    OptimizerArg arg{core::trim(piece.substr(0, eq)), core::trim(piece.substr(eq + 1))};
    LS_CHECK(!arg.key.empty() && !arg.value.empty(), "optimizer_args: '", piece,
             "' must be key=value (e.g. weight_decay=0.01)");
    LS_CHECK(seen.insert(arg.key).second, "optimizer_args: '", arg.key, "' is given twice; keep one");
    out.push_back(std::move(arg));
  }
  return out;
}

double arg_double(const OptimizerArg& arg, const std::string& what) {
  double v = 0;
  LS_CHECK(parse_python_float(arg.value, v), "optimizer_args: ", what, " ", arg.key,
           " must be a number, got '", arg.value, "'");
  return v;
}

int64_t arg_int(const OptimizerArg& arg, const std::string& what) {
  int64_t v = 0;
  LS_CHECK(core::parse_int64(core::trim(arg.value), v), "optimizer_args: ", what, " ", arg.key,
           " must be a whole number, got '", arg.value, "'");
  return v;
}

bool arg_bool(const OptimizerArg& arg, const std::string& what) {
  const std::string& v = arg.value;
  if (v == "True" || v == "true" || v == "1") return true;
  if (v == "False" || v == "false" || v == "0") return false;
  LS_FAIL("optimizer_args: ", what, " ", arg.key, " must be True or False, got '", v, "'");
}

std::optional<double> arg_optional_double(const OptimizerArg& arg, const std::string& what) {
  if (arg.value == "None") return std::nullopt;
  double v = 0;
  LS_CHECK(parse_python_float(arg.value, v), "optimizer_args: ", what, " ", arg.key,
           " must be a number or None, got '", arg.value, "'");
  return v;
}

std::vector<double> arg_doubles(const OptimizerArg& arg, size_t n, const std::string& what) {
  std::string s = core::trim(arg.value);
  if (s.size() >= 2 && ((s.front() == '(' && s.back() == ')') || (s.front() == '[' && s.back() == ']'))) {
    s = s.substr(1, s.size() - 2);
  }
  std::vector<double> out;
  std::istringstream parts(s);
  std::string part;
  bool ok = true;
  while (ok && std::getline(parts, part, ',')) {
    double v = 0;
    ok = parse_python_float(part, v);
    out.push_back(v);
  }
  LS_CHECK(ok && out.size() == n, "optimizer_args: ", what, " ", arg.key, " must be ", n,
           " comma-separated numbers, got '", arg.value, "'");
  return out;
}

void fail_unknown_arg(const OptimizerArg& arg, const std::string& what,
                      const std::vector<std::string>& valid_keys) {
  LS_FAIL("optimizer_args: ", what, " has no option '", arg.key, "'; valid: ", join(valid_keys));
}

}  // namespace ls::train
