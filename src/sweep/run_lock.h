// Keeping two workers off one run without a scheduler of our own: a lock file in the run's folder
// (a shared file system is all the workers share) holding its owner and a heartbeat time that the
// owner renews while it trains. A run whose heartbeat is older than the timeout belongs to a
// worker that died (killed, machine lost): another worker may take it over and resume it. A lock
// whose owner is a process of this machine that no longer exists is taken at once.
//
// Taking is atomic on POSIX file systems: a free lock is created with O_EXCL; a stale one is first
// renamed away (only one of several workers' renames of the same file succeeds), then created.
// Heartbeats are wall-clock times, so workers on several machines need synchronised clocks (NTP),
// as Slurm and Kubernetes nodes have.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace ls::sweep {

class RunLock {
 public:
  /// Takes the lock of `folder` when it is free or stale; nullptr when a live worker holds it
  /// (its owner text then goes to *holder). The heartbeat is renewed every timeout/4 seconds.
  static std::unique_ptr<RunLock> try_take(const std::string& folder, double timeout_seconds,
                                           std::string* holder = nullptr);
  /// Stops the heartbeat and removes the lock file.
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  /// "host:pid:nonce", the text other workers see.
  const std::string& owner() const { return owner_; }

 private:
  RunLock(std::string path, std::string owner, double timeout_seconds);
  void beat() const;

  std::string path_, owner_;
  double timeout_;
  std::atomic<bool> stop_{false};
  std::thread heartbeat_;
};

/// Seconds since the Unix epoch (wall clock), as the heartbeats are written.
double wall_seconds();

}  // namespace ls::sweep
