// ls::Error and LS_CHECK: the one way the library reports bad input.
// Only cli/main.cpp catches and prints; the library never exits.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ls {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

}  // namespace ls

/// Throws ls::Error with the concatenated message when cond is false.
/// Message: "<what failed>: <why>, <what to do>", one line, naming the file when there is one.
#define LS_CHECK(cond, ...)                              \
  do {                                                   \
    if (!(cond)) throw ::ls::Error(::ls::str_cat(__VA_ARGS__)); \
  } while (0)

#define LS_FAIL(...) throw ::ls::Error(::ls::str_cat(__VA_ARGS__))
