// Run locks with a heartbeat; see run_lock.h.
#include "sweep/run_lock.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <csignal>
#include <cstdlib>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace fs = std::filesystem;

namespace ls::sweep {
namespace {

constexpr const char* kLockFile = "sweep-run.lock";

std::string lock_text(const std::string& owner) {
  return nlohmann::json{{"owner", owner}, {"heartbeat", wall_seconds()}}.dump() + "\n";
}

std::string host_name();

std::string new_owner() {
  std::random_device rd;
  char nonce[16];
  std::snprintf(nonce, sizeof nonce, "%08x", static_cast<unsigned>(rd()));
  return host_name() + ":" + std::to_string(getpid()) + ":" + nonce;
}

/// Creates the lock file if there is none; false when it exists.
bool create_exclusive(const fs::path& path, const std::string& owner) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    LS_CHECK(errno == EEXIST, path.string(), ": cannot create the run lock (", std::strerror(errno),
             "); check that the sweep folder is writable");
    return false;
  }
  const std::string text = lock_text(owner);
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  LS_CHECK(ok, path.string(), ": cannot write the run lock; check the disk");
  return true;
}

std::string host_name() {
  char host[256] = "host";
  gethostname(host, sizeof host - 1);
  return host;
}

/// True when `owner` is a process of this machine that no longer exists (a worker killed here
/// need not wait for its heartbeat to age).
bool owner_is_gone(const std::string& owner) {
  const size_t a = owner.find(':'), b = owner.find(':', a + 1);
  if (a == std::string::npos || b == std::string::npos || owner.substr(0, a) != host_name()) return false;
  const long pid = std::strtol(owner.substr(a + 1, b - a - 1).c_str(), nullptr, 10);
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

}  // namespace

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::unique_ptr<RunLock> RunLock::try_take(const std::string& folder, double timeout, std::string* holder) {
  fs::create_directories(folder);
  const fs::path path = fs::path(folder) / kLockFile;
  const std::string owner = new_owner();
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (create_exclusive(path, owner)) return std::unique_ptr<RunLock>(new RunLock(path.string(), owner, timeout));
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(core::read_file(path));
    } catch (const std::exception&) {
      // Being written by its owner this instant, or gone: look again.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    const double age = wall_seconds() - j.value("heartbeat", 0.0);
    if (age <= timeout && !owner_is_gone(j.value("owner", std::string()))) {
      if (holder) *holder = j.value("owner", std::string("?"));
      return nullptr;
    }
    // Stale: move it aside; of several workers doing this at once only one rename succeeds.
    const fs::path aside = path.string() + ".stale." + owner;
    if (::rename(path.c_str(), aside.c_str()) == 0) fs::remove(aside);
  }
  if (holder) *holder = "(another worker, taking it over just now)";
  return nullptr;
}

RunLock::RunLock(std::string path, std::string owner, double timeout)
    : path_(std::move(path)), owner_(std::move(owner)), timeout_(timeout) {
  heartbeat_ = std::thread([this] {
    const auto period = std::chrono::duration<double>(timeout_ / 4);
    auto next = std::chrono::steady_clock::now() + period;
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (std::chrono::steady_clock::now() < next) continue;
      beat();
      next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
    }
  });
}

void RunLock::beat() const {
  try {
    core::write_file_atomic(path_, lock_text(owner_));
  } catch (const Error&) {
    // A full disk for a moment: the next beat tries again; only a long outage lets others take over.
  }
}

RunLock::~RunLock() {
  stop_ = true;
  heartbeat_.join();
  std::error_code ec;
  fs::remove(path_, ec);
}

}  // namespace ls::sweep
