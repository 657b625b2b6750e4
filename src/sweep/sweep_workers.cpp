// Worker processes of a sweep, one per device; see sweep_workers.h.
#include "sweep/sweep_workers.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <string_view>
#include <thread>

#include "core/error.h"
#include "core/runtime.h"
#include "core/strings.h"

extern char** environ;

namespace ls::sweep {

namespace {

std::atomic<int> g_forward_signal{0};
std::vector<pid_t> g_children;  // written before the handlers are installed, read-only after

void forward(int sig) {
  g_forward_signal = sig;
  for (pid_t pid : g_children) kill(pid, sig);
}

}  // namespace

std::vector<std::string> parse_device_list(const std::string& text) {
  std::vector<std::string> out;
  for (size_t start = 0; start <= text.size();) {
    const size_t end = std::min(text.find(',', start), text.size());
    const std::string d = core::trim(std::string_view(text).substr(start, end - start));
    start = end + 1;
    LS_CHECK(!d.empty(), "--devices '", text, "': an empty device name; e.g. --devices cuda:0,cuda:1");
    (void)core::parse_device(d);  // a bad name is an error here, not in every worker
    out.push_back(d);
  }
  LS_CHECK(!out.empty(), "--devices: no device given; e.g. --devices cuda:0,cuda:1");
  return out;
}

int run_device_workers(const WorkerOptions& o) {
  const size_t n = o.devices.size();
  // N workers with every core each would oversubscribe the CPU: OpenMP threads that spin at their
  // barriers made two 2-thread runs on 2 cores 4.5x slower per step, one thread each 2.0x (the
  // fair share; README, performance notes). torchrun divides the cores the same way.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  ::setenv("OMP_NUM_THREADS", std::to_string(std::max<size_t>(1, cores / n)).c_str(), 0);
  std::filesystem::create_directories(o.log_dir);
  g_children.clear();
  for (size_t i = 0; i < n; ++i) {
    std::vector<std::string> args = {o.executable};
    args.insert(args.end(), o.arguments.begin(), o.arguments.end());
    args.insert(args.end(), {"--shard", std::to_string(i) + "/" + std::to_string(n), "--device", o.devices[i]});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = (std::filesystem::path(o.log_dir) / ("worker-" + std::to_string(i) + ".log")).string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, o.executable.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      for (pid_t child : g_children) kill(child, SIGTERM);
      for (pid_t child : g_children) waitpid(child, nullptr, 0);
      LS_FAIL("sweep --devices: cannot start a worker (", o.executable, "): ", std::strerror(rc));
    }
    g_children.push_back(pid);
    if (o.print) {
      o.print(str_cat("worker ", i, " on ", o.devices[i], " (pid ", pid, ", OMP_NUM_THREADS ",
                      std::getenv("OMP_NUM_THREADS"), "), log ", log));
    }
  }
  // Ctrl-C reaches the workers from the terminal as well; a signal sent to this process alone is
  // passed on, so that every worker saves its state.
  struct sigaction sa {}, old_int{}, old_term{};
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  int worst = 0;
  for (size_t i = 0; i < n; ++i) {
    int status = 0;
    while (waitpid(g_children[i], &status, 0) < 0 && errno == EINTR) {
    }
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (o.print) o.print("worker " + std::to_string(i) + " on " + o.devices[i] + " exited " + std::to_string(code));
    worst = std::max(worst, code);
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  g_children.clear();
  return worst;
}

}  // namespace ls::sweep
