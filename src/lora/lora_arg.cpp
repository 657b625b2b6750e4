// The --lora argument syntax; see lora_arg.h.
#include "lora/lora_arg.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace ls::lora {

std::pair<std::string, double> parse_lora_arg(const std::string& arg) {
  auto colon = arg.rfind(':');
  if (colon == std::string::npos || colon == 0) return {arg, 1.0};
  std::string mult = arg.substr(colon + 1);
  try {
    size_t used = 0;
    const double m = std::stod(mult, &used);
    if (used == mult.size()) {
      // stod reads "nan" and "inf": such a strength would turn every weight it touches into NaN.
      LS_CHECK(std::isfinite(m), "LoRA '", arg, "': the strength after ':' must be a finite number, e.g. ",
               arg.substr(0, colon), ":0.8");
      return {arg.substr(0, colon), m};
    }
  } catch (const std::logic_error&) {  // std::invalid_argument, std::out_of_range: not a number
  }
  return {arg, 1.0};  // a ':' that is part of the path
}

}  // namespace ls::lora
