// JSON-lines files that grow by appending (run logs, the caption history). Each line goes out in
// one write(2) on an O_APPEND descriptor, so lines of concurrent writers (sweep workers on one
// log) never interleave and a kill leaves at most the last line cut short. Before the first
// append a cut last line is ended with '\n': the cut text stays one unreadable line, which readers
// skip, and never swallows the next line. A failed or short write (disk full) cuts the file back
// to its length before the append — shrinking needs no space — so the file only ever holds whole
// lines after a failure too.
#pragma once

#include <filesystem>
#include <string>

#include <sys/types.h>

namespace ls::core {

/// Appends `line` (which must not end in '\n'; one is added) to `path`, created if missing, with
/// fsync when `sync`. Returns 0, or the errno of the failure (ENOSPC for a short write) with the
/// file as it was: a file this call created is removed again. `size_before` receives the file's
/// length before the append (-1 when the file could not be opened), for a caller that later takes
/// the line back (truncate to it, or remove the file when it is 0).
int append_line(const std::filesystem::path& path, const std::string& line, bool sync, off_t& size_before);

/// A log kept open for many appends (a training run, a sheet): opened on construction (ending a
/// cut last line), each append one whole line. Errors are ls::Error naming the file and the fix.
class LineLog {
 public:
  explicit LineLog(std::filesystem::path path);
  ~LineLog();
  LineLog(const LineLog&) = delete;
  LineLog& operator=(const LineLog&) = delete;

  /// One line (no '\n' in it; one is added). Throws on a failed write, the file cut back first.
  void append(const std::string& line);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace ls::core
