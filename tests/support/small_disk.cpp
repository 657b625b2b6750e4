#include "support/small_disk.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/atomic_file.h"

extern char** environ;

namespace ls::test {
namespace {

namespace fs = std::filesystem;

// The tmpfs is mounted over the folder inside the namespace, so the folder's files travel in and
// out through a sibling copy. Its size is first generous, then cut to what the copied files use
// plus the free bytes asked for. Exit codes 201..206 are this script's own failures.
constexpr const char* kSmallDiskScript = R"(f=$1 free=$2 ro=$3 pidfile=$4; shift 4
seed="$f.ls-seed"
rm -rf "$seed" && mkdir "$seed" && cp -a "$f/." "$seed/" || exit 201
mount -t tmpfs -o size=256m tmpfs "$f" || exit 202
cp -a "$seed/." "$f/" && rm -rf "$seed" || exit 203
if [ "$free" != - ]; then
  bs=$(stat -f -c %S "$f") total=$(stat -f -c %b "$f") avail=$(stat -f -c %a "$f")
  mount -o remount,size=$(( (total - avail) * bs + free )) "$f" || exit 204
fi
if [ "$ro" = 1 ]; then mount -o remount,ro "$f" || exit 205; fi
"$@" &
echo $! > "$pidfile"
wait $!
rc=$?
mkdir "$seed" && cp -a "$f/." "$seed/" || exit 206
exit $rc
)";

std::string small_disk_which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin:/usr/sbin:/sbin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const fs::path p = fs::path(dir) / name;
    if (!dir.empty() && ::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

// Probed once: a tmpfs mount and a read-only remount in a user + mount namespace.
bool small_disk_can_mount() {
  static const bool can = [] {
    if (small_disk_which("unshare").empty()) return false;
    const std::string probe =
        "unshare -rm sh -c 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\" && "
        "mount -o remount,ro \"$d\" && umount \"$d\"; rc=$?; rmdir \"$d\"; exit $rc' >/dev/null 2>&1";
    return std::system(probe.c_str()) == 0;
  }();
  return can;
}

void small_disk_set_writable(const fs::path& folder, bool writable) {
  const auto perms = writable ? fs::perm_options::add : fs::perm_options::remove;
  const fs::perms bits = writable ? fs::perms::owner_write : fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write;
  std::error_code ec;
  fs::permissions(folder, bits, perms, ec);
  for (auto it = fs::recursive_directory_iterator(folder, ec); it != fs::recursive_directory_iterator(); it.increment(ec))
    if (!it->is_symlink()) fs::permissions(it->path(), bits, perms, ec);
}

}  // namespace

std::string full_disk_error_text(const std::string& mechanism) {
  return mechanism == "tmpfs" ? "(No space left on device); free disk space" : "(File too large)";
}

std::string disk_fault_mechanism(DiskFault::Kind kind) {
  const char* forced = std::getenv("LS_TEST_DISK_FAULT");
  const std::string force = forced ? forced : "";
  if (force.empty() && small_disk_can_mount()) return "tmpfs";
  if (kind == DiskFault::kFull) return "rlimit";
  return ::geteuid() != 0 ? "chmod" : "";
}

FaultedProcess::FaultedProcess(fs::path folder, DiskFault fault, std::vector<std::string> args)
    : folder_(fs::absolute(std::move(folder))), mechanism_(disk_fault_mechanism(fault.kind)) {
  pid_file_ = folder_.string() + ".ls-pid";
  seed_ = folder_.string() + ".ls-seed";
  std::error_code ec;
  fs::remove(pid_file_, ec);
  if (mechanism_.empty()) {
    result_.out = "no way to make a read-only folder here (root without user namespaces)";
    done_ = true;
    return;
  }
  std::vector<std::string> argv;
  if (mechanism_ == "tmpfs") {
    argv = {small_disk_which("unshare"), "-rm", "/bin/sh", "-c", kSmallDiskScript, "sh", folder_.string(),
            fault.kind == DiskFault::kFull ? std::to_string(fault.free_bytes) : "-",
            fault.kind == DiskFault::kReadOnly ? "1" : "0", pid_file_.string()};
  }
  argv.push_back(kLorastudioExe);
  argv.insert(argv.end(), args.begin(), args.end());
  if (mechanism_ == "chmod") small_disk_set_writable(folder_, false);

  // Everything the child needs is built here: between fork and exec only async-signal-safe calls.
  std::vector<std::string> env{"OMP_NUM_THREADS=1", "OMP_WAIT_POLICY=PASSIVE"};
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    if (entry.rfind("OMP_NUM_THREADS=", 0) != 0 && entry.rfind("OMP_WAIT_POLICY=", 0) != 0) env.push_back(entry);
  }
  std::vector<char*> argp, envp;
  for (auto& s : argv) argp.push_back(s.data());
  argp.push_back(nullptr);
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  int pipe_fds[2] = {-1, -1};
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result_.out = "pipe2 failed";
    done_ = true;
    return;
  }
  const int out = pipe_fds[1];
  const bool limit = mechanism_ == "rlimit";
  const rlim_t limit_bytes = static_cast<rlim_t>(fault.free_bytes);
  std::fflush(stdout);
  child_ = ::fork();
  if (child_ == 0) {
    if (::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) _exit(126);
    if (limit) {
      struct sigaction ignore {};
      ignore.sa_handler = SIG_IGN;
      ::sigaction(SIGXFSZ, &ignore, nullptr);  // write() then fails with EFBIG instead of killing
      const struct rlimit r{limit_bytes, limit_bytes};
      if (::setrlimit(RLIMIT_FSIZE, &r) != 0) _exit(126);
    }
    ::execve(argp[0], argp.data(), envp.data());
    _exit(127);
  }
  ::close(out);
  reader_ = std::thread([this, in = pipe_fds[0]] {
    char buf[4096];
    for (ssize_t n; (n = ::read(in, buf, sizeof buf)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      std::lock_guard<std::mutex> lock(out_mutex_);
      out_.append(buf, static_cast<size_t>(n));
    }
    ::close(in);
  });
}

FaultedProcess::~FaultedProcess() {
  if (done_) return;
  const int pid = mechanism_ == "tmpfs" ? lorastudio_pid() : child_;
  if (pid > 0) ::kill(pid, SIGKILL);
  wait();
}

int FaultedProcess::lorastudio_pid() {
  if (mechanism_ != "tmpfs") return child_;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(pid_file_);
    int pid = -1;
    if (in >> pid && pid > 0) return pid;
    if (child_ <= 0 || reaped_) return -1;
    if (::waitpid(child_, &status_, WNOHANG) == child_) {  // the script ended (or failed)
      reaped_ = true;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

std::string FaultedProcess::output() const {
  std::lock_guard<std::mutex> lock(out_mutex_);
  return out_;
}

CommandResult FaultedProcess::wait() {
  if (done_) return result_;
  done_ = true;
  if (child_ > 0 && !reaped_) {
    while (::waitpid(child_, &status_, 0) < 0 && errno == EINTR) {}
  }
  const int status = status_;
  result_.exit_code = child_ <= 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (reader_.joinable()) reader_.join();  // EOF once the process and its children are gone
  result_.out = output();
  std::error_code ec;
  fs::remove(pid_file_, ec);
  if (mechanism_ == "chmod") small_disk_set_writable(folder_, true);
  if (mechanism_ == "tmpfs") {
    if (result_.exit_code >= 201 && result_.exit_code <= 206)
      ADD_FAILURE() << "the small-disk script failed (" << result_.exit_code << "): " << result_.out;
    if (fs::is_directory(seed_)) {  // what the command left on the tmpfs
      fs::remove_all(folder_, ec);
      fs::rename(seed_, folder_, ec);
      if (ec) ADD_FAILURE() << seed_ << ": cannot bring the files back: " << ec.message();
    }
  }
  return result_;
}

int local_server_port(const FaultedProcess& server) {
  const std::regex url(R"(on http://127\.0\.0\.1:([0-9]+))");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    const std::string out = server.output();
    if (std::regex_search(out, m, url)) return std::stoi(m[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

CommandResult run_lorastudio_with_fault(const fs::path& folder, DiskFault fault, const std::vector<std::string>& args) {
  FaultedProcess p(folder, fault, args);
  return p.wait();
}

CommandResult run_lorastudio_unfaulted(const std::vector<std::string>& args) {
  char log_template[] = "/tmp/ls_unfaulted_XXXXXX";
  const int fd = ::mkstemp(log_template);
  if (fd < 0) return {};
  ::close(fd);
  std::vector<std::string> argv{kLorastudioExe};
  argv.insert(argv.end(), args.begin(), args.end());
  const int pid = spawn(argv, log_template);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = core::read_file(log_template);
  std::error_code ec;
  fs::remove(log_template, ec);
  return r;
}

std::map<std::string, std::string> folder_files(const fs::path& folder) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(folder, ec); it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file()) files[fs::relative(it->path(), folder).generic_string()] = core::read_file(it->path());
  return files;
}

std::vector<std::string> folder_changes(const std::map<std::string, std::string>& before,
                                        const std::map<std::string, std::string>& after) {
  std::vector<std::string> changes;
  for (const auto& [name, bytes] : before) {
    auto it = after.find(name);
    if (it == after.end()) changes.push_back("-" + name);
    else if (it->second != bytes) changes.push_back("~" + name);
  }
  for (const auto& [name, bytes] : after)
    if (!before.count(name)) changes.push_back("+" + name);
  std::sort(changes.begin(), changes.end());
  return changes;
}

std::vector<std::string> error_lines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("error:", 0) == 0) lines.push_back(line);
  return lines;
}

std::vector<std::string> leftover_temp_files(const fs::path& folder) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(folder, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find(".tmp") != std::string::npos || name.find(".old-") != std::string::npos)
      found.push_back(fs::relative(it->path(), folder).generic_string());
  }
  return found;
}

}  // namespace ls::test
