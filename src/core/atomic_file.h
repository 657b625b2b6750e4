// Outputs are written to "<path>.tmp.<pid>" and renamed over the target only when complete,
// so an interrupted or failed write (disk full, read-only folder) never leaves a half file where
// a good one was: every write, the flush, the fsync and the close are checked, the temp file is
// removed on any failure, and the error is one line naming the target, errno's text and the fix.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace ls::core {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();  // removes the temp file unless commit() ran
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::FILE* handle() { return file_; }
  void write(const void* data, size_t size);
  /// Flushes, fsyncs and renames the temp file onto the target.
  void commit();
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  [[noreturn]] void fail(const char* what, int err);

  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

/// Writes a whole string atomically.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);
std::string read_file(const std::filesystem::path& path);

/// What a writer killed mid-write (kill -9, power loss) left in `dir` — AtomicFile temps
/// "<name>.tmp.<pid>", state folders' "<name>.tmp-<pid>" and "<name>.old-<pid>" — whose process
/// is gone: temps are removed; an ".old-" whose <name> is missing (the swap was cut between its two
/// renames) is renamed back to <name>, else removed. A live process's entries (another lorastudio
/// writing there now) are left alone. With `recursive`, subfolders too (not hidden ones: pass
/// those, e.g. ".lorastudio", by name). Returns the entries
/// handled; failures to remove are ignored (the next run tries again).
std::vector<std::filesystem::path> clean_interrupted_writes(const std::filesystem::path& dir, bool recursive = false);

/// What a user can do about a failed write with this errno: free space (ENOSPC, EDQUOT), the file
/// size limit (EFBIG), a read-only filesystem (EROFS), permissions (EACCES, EPERM).
std::string write_error_advice(int err);
/// "<path>: <what> (<errno text>); <advice>": the one-line message of a failed write.
std::string write_error_message(const std::filesystem::path& path, const std::string& what, int err);

}  // namespace ls::core
