// Runs lorastudio as a child process whose folder is full or read-only, for the disk-full tests.
// Where user namespaces allow (`unshare -rm`), the folder is a tmpfs sized to its contents plus
// the free bytes asked for (a real ENOSPC), or remounted read-only (EROFS); elsewhere a full disk
// is RLIMIT_FSIZE in the child (SIGXFSZ ignored, so write() fails with EFBIG on the same code path)
// and a read-only folder is `chmod -R a-w` (only as non-root: root ignores permission bits).
// The namespace is made in a fresh process, never in the multithreaded test process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/support.h"

namespace ls::test {

struct DiskFault {
  enum Kind { kFull, kReadOnly };
  Kind kind = kFull;
  /// kFull: the bytes left free on the folder's tmpfs (rounded up to pages), or under the fallback
  /// the largest file the process may write. A test picks a value that fails the write it targets
  /// under both readings (the target is larger than it; everything written before is smaller).
  uint64_t free_bytes = 0;
};

/// How `kind` is made here: "tmpfs", "rlimit", "chmod", or "" when it cannot be (read-only as root
/// without user namespaces: the caller skips). LS_TEST_DISK_FAULT=rlimit|chmod forces a fallback.
std::string disk_fault_mechanism(DiskFault::Kind kind);
/// The part of a failed write's error line a full disk made by `mechanism` gives: ENOSPC's text and
/// its advice on a tmpfs, EFBIG's under RLIMIT_FSIZE.
std::string full_disk_error_text(const std::string& mechanism);

/// `lorastudio args...` started with `folder` under `fault`. The folder's files are its starting
/// contents; once the process has ended, the folder holds what it left (copied out of the tmpfs,
/// which vanishes with its namespace).
class FaultedProcess {
 public:
  FaultedProcess(std::filesystem::path folder, DiskFault fault, std::vector<std::string> args);
  ~FaultedProcess();  // SIGKILLs a process still running, then waits
  FaultedProcess(const FaultedProcess&) = delete;
  FaultedProcess& operator=(const FaultedProcess&) = delete;

  const std::string& mechanism() const { return mechanism_; }
  /// The lorastudio process (to signal it), waiting up to 60 s for it to start; -1 if it did not.
  int lorastudio_pid();
  /// stdout and stderr so far (e.g. a server's URL line).
  std::string output() const;
  /// Waits for the end and brings the folder's files back.
  CommandResult wait();

 private:
  std::filesystem::path folder_, pid_file_, seed_;
  // The output comes through a pipe: under RLIMIT_FSIZE a log file would be cut at the limit too.
  std::thread reader_;
  mutable std::mutex out_mutex_;
  std::string out_;
  std::string mechanism_;
  int child_ = -1;
  int status_ = 0;
  bool reaped_ = false, done_ = false;
  CommandResult result_;
};

/// The port of a local server it runs (`review`, `captions`), from its "on http://127.0.0.1:PORT"
/// line, waiting up to 60 s; -1 if none came.
int local_server_port(const FaultedProcess& server);

/// FaultedProcess(...).wait().
CommandResult run_lorastudio_with_fault(const std::filesystem::path& folder, DiskFault fault,
                                        const std::vector<std::string>& args);

/// `lorastudio args...` with no fault, in a FaultedProcess's environment (one OpenMP thread): the
/// run a faulted one is compared with byte for byte, since float sums — and so the bytes a run
/// trains or renders — depend on the thread count.
CommandResult run_lorastudio_unfaulted(const std::vector<std::string>& args);

/// Every regular file under `folder`: relative path -> bytes.
std::map<std::string, std::string> folder_files(const std::filesystem::path& folder);
/// "+path" (added), "-path" (removed), "~path" (bytes differ) from `before` to `after`, sorted.
std::vector<std::string> folder_changes(const std::map<std::string, std::string>& before,
                                        const std::map<std::string, std::string>& after);
/// The lines of `out` that start with "error:".
std::vector<std::string> error_lines(const std::string& out);
/// Files under `folder` whose name marks an unfinished write (".tmp", ".old-").
std::vector<std::string> leftover_temp_files(const std::filesystem::path& folder);

}  // namespace ls::test
