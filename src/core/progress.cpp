// Progress line: rate from the elapsed wall time since construction, ETA = remaining / rate.
#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <sstream>

namespace ls::core {

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled),
      tty_(isatty(fileno(stderr)) != 0), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() { finish(); }

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  std::ostringstream out;
  if (s >= 3600) out << s / 3600 << "h" << (s % 3600) / 60 << "m";
  else if (s >= 60) out << s / 60 << "m" << s % 60 << "s";
  else out << s << "s";
  return out.str();
}

std::string Progress::format_line(const std::string& label, int64_t done, int64_t total, double seconds,
                                  const std::string& unit, const std::string& suffix, int bar_width) {
  std::ostringstream out;
  out << label;
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  if (total > 0) {
    const int filled = static_cast<int>(static_cast<double>(bar_width) * static_cast<double>(done) / static_cast<double>(total));
    out << " [" << std::string(static_cast<size_t>(std::min(filled, bar_width)), '#')
        << std::string(static_cast<size_t>(bar_width - std::min(filled, bar_width)), '.') << "] " << done << "/" << total;
  } else {
    out << " " << done;
  }
  char buf[64];
  if (rate >= 1 || rate == 0) std::snprintf(buf, sizeof buf, " %.1f %s/s", rate, unit.c_str());
  else std::snprintf(buf, sizeof buf, " %.1f s/%s", 1.0 / rate, unit.c_str());
  out << buf;
  if (total > 0 && done < total) out << " ETA " << (rate > 0 ? format_duration(static_cast<double>(total - done) / rate) : "?");
  if (total > 0 && done >= total) out << " in " << format_duration(seconds);
  if (!suffix.empty()) out << " " << suffix;
  return out.str();
}

void Progress::advance(int64_t n) {
  done_ += n;
  draw(false);
}

void Progress::set_suffix(std::string suffix) { suffix_ = std::move(suffix); }

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - start_).count();
  if (tty_) {
    if (!final && now - last_draw_ < std::chrono::milliseconds(200)) return;
    last_draw_ = now;
    std::fprintf(stderr, "\r\033[K%s%s", format_line(label_, done_, total_, seconds, unit_, suffix_).c_str(),
                 final ? "\n" : "");
  } else {
    // Logs get a line per 10% at most every 2 s, and the final line.
    const int decile = total_ > 0 ? static_cast<int>(10 * done_ / total_) : -1;
    if (!final && (decile == last_decile_ || total_ <= 0 || now - last_draw_ < std::chrono::seconds(2))) return;
    if (final && total_ > 0 && done_ == total_ && last_decile_ == 10) return;  // the 100% line is out already
    last_decile_ = decile;
    last_draw_ = now;
    std::fprintf(stderr, "%s\n", format_line(label_, done_, total_, seconds, unit_, suffix_).c_str());
  }
  std::fflush(stderr);
}

}  // namespace ls::core
