// A child SIGKILLed at a time or inside a write; see kill_nine.h.
#include "support/kill_nine.h"

#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <thread>

#include "support/support.h"

namespace fs = std::filesystem;

namespace ls::test {
namespace {

// New temp names under a folder tree, in the order they appear: inotify (every creation is seen,
// however short-lived), or — where inotify is unavailable (no instances left, a filesystem that
// does not report) — a scan per call, which may miss a temp that lives less than one interval.
class TempWatcher {
 public:
  explicit TempWatcher(const fs::path& dir) : dir_(dir) {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ >= 0 && !watch_tree(dir)) {
      close(fd_);
      fd_ = -1;
    }
    if (fd_ < 0) std::printf("[kill9] inotify unavailable; polling %s\n", dir.c_str());
  }
  ~TempWatcher() {
    if (fd_ >= 0) close(fd_);
  }
  TempWatcher(const TempWatcher&) = delete;
  TempWatcher& operator=(const TempWatcher&) = delete;

  /// The next temp name created (full path), waiting at most `timeout_ms`.
  std::optional<fs::path> next(int timeout_ms) {
    if (pending_.empty()) fd_ >= 0 ? read_events(timeout_ms) : scan(timeout_ms);
    if (pending_.empty()) return std::nullopt;
    fs::path p = pending_.front();
    pending_.pop_front();
    return p;
  }

 private:
  bool watch_tree(const fs::path& dir) {
    if (!add_watch(dir)) return false;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_directory(ec)) add_watch(it->path());
    return true;
  }
  bool add_watch(const fs::path& dir) {
    const int wd = inotify_add_watch(fd_, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
    if (wd < 0) return false;
    dirs_[wd] = dir;
    return true;
  }
  void read_events(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return;
    alignas(inotify_event) char buf[16384];
    for (;;) {
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) return;
      for (ssize_t off = 0; off < n;) {
        const auto* e = reinterpret_cast<const inotify_event*>(buf + off);
        off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
        const auto it = dirs_.find(e->wd);
        if (it == dirs_.end() || e->len == 0) continue;
        const fs::path path = it->second / e->name;
        if (e->mask & IN_ISDIR) add_watch(path);  // a state folder's files, cells/, backups/
        if (is_temp_name(e->name)) pending_.push_back(path);
      }
    }
  }
  void scan(int timeout_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (is_temp_name(name) && seen_.insert(it->path().string()).second) pending_.push_back(it->path());
    }
  }

  fs::path dir_;
  int fd_ = -1;
  std::map<int, fs::path> dirs_;
  std::set<std::string> seen_;
  std::deque<fs::path> pending_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void record_exit(int status, KillOutcome& out) {
  out.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

std::string KillOutcome::describe() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f s", seconds);
  if (!killed) return std::string("exited ") + std::to_string(exit_code) + " after " + buf;
  return std::string("killed at ") + buf + (temp.empty() ? "" : " writing " + temp);
}

KillAt random_kill(std::mt19937_64& rng, const RunShape& shape, double time_left, double writes_left,
                   const fs::path& watch) {
  KillAt at{1e9, 0, watch};
  if (rng() % 2 == 0) {
    const double window = 0.9 * (shape.startup + std::clamp(time_left, 0.0, 1.0) * shape.work);
    at.seconds = std::uniform_real_distribution<double>(0.0, std::max(window, 0.01))(rng);
  } else {
    const int n = static_cast<int>(std::ceil(0.8 * std::clamp(writes_left, 0.0, 1.0) * shape.writes));
    at.nth_write = std::uniform_int_distribution<int>(1, std::max(n, 1))(rng);
  }
  return at;
}

bool is_temp_name(const std::string& name) {
  static const std::regex re(R"(.*\.(tmp\.|tmp-|old-)[0-9]+$)");
  return std::regex_match(name, re);
}

std::vector<std::string> temp_entries(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_temp_name(it->path().filename().string())) out.push_back(fs::relative(it->path(), dir).string());
  return out;
}

uint64_t random_test_seed(const std::string& test) {
  uint64_t seed = 0;
  if (const char* s = std::getenv("LS_TEST_SEED"); s && *s) {
    seed = std::strtoull(s, nullptr, 10);
  } else {
    std::random_device rd;  // a new schedule each run; the printed seed replays it
    seed = (static_cast<uint64_t>(rd()) << 32) | rd();
  }
  std::printf("[kill9] %s: seed %llu (LS_TEST_SEED=%llu replays this schedule)\n", test.c_str(),
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  return seed;
}

KillOutcome run_and_kill(const std::vector<std::string>& argv, const KillAt& at, const std::string& log) {
  std::optional<TempWatcher> watcher;
  if (!at.watch.empty()) {
    fs::create_directories(at.watch);
    watcher.emplace(at.watch);  // before the start: the child's first writes are seen too
  }
  KillOutcome out;
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = spawn(argv, log);
  int status = 0;
  const auto kill_now = [&](const std::string& temp) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    out.seconds = seconds_since(t0);
    record_exit(status, out);
    if (out.killed) out.temp = temp;
    return out;
  };
  for (;;) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      out.seconds = seconds_since(t0);
      while (watcher && watcher->next(0)) ++out.writes_seen;  // what it wrote last
      record_exit(status, out);
      return out;
    }
    if (at.nth_write == 0 && seconds_since(t0) >= at.seconds) return kill_now("");
    const std::optional<fs::path> temp = watcher ? watcher->next(2) : std::nullopt;
    if (!watcher) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (!temp) continue;
    ++out.writes_seen;
    if (at.nth_write == 0 || out.writes_seen < at.nth_write) continue;
    // Freeze it, then look: a temp still there means the write has not been renamed into place.
    kill(pid, SIGSTOP);
    if (waitpid(pid, &status, WUNTRACED) == pid && !WIFSTOPPED(status)) {
      out.seconds = seconds_since(t0);
      record_exit(status, out);
      return out;
    }
    std::error_code ec;
    if (fs::exists(*temp, ec)) return kill_now(fs::relative(*temp, at.watch).string());
    kill(pid, SIGCONT);  // that write was done: kill at the next one still under way
  }
}

}  // namespace ls::test
