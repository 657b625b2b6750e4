// The one clock for durations (cell and image timings, rates): monotonic, in seconds, so a wall
// clock adjustment mid-run cannot give negative or inflated times.
#pragma once

#include <chrono>

namespace ls::core {

inline double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace ls::core
