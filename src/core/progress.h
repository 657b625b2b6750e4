// A progress line for long work: done/total, rate and ETA, redrawn in place on a terminal and
// printed every 10% otherwise (logs stay short). Writes to stderr; stdout stays for results.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ls::core {

class Progress {
 public:
  /// `unit` names what is counted ("img", "step"); total <= 0 hides the bar and the ETA.
  Progress(std::string label, int64_t total, std::string unit = "it", bool enabled = true);
  ~Progress();  // finishes the line
  void advance(int64_t n = 1);
  void set_suffix(std::string suffix);  // e.g. "loss 0.123"
  void finish();

  /// "label [####......] 12/40 3.1 img/s ETA 9s" (exposed for tests).
  static std::string format_line(const std::string& label, int64_t done, int64_t total, double seconds,
                                 const std::string& unit, const std::string& suffix, int bar_width = 24);
  static std::string format_duration(double seconds);

 private:
  void draw(bool final);

  std::string label_, unit_, suffix_;
  int64_t total_ = 0, done_ = 0;
  bool enabled_ = true, tty_ = false, finished_ = false;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace ls::core
