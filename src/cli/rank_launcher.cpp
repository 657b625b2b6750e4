#include "cli/rank_launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/error.h"

namespace ls::cli {
namespace {

std::vector<std::string> g_command_line;
std::atomic<int> g_launcher_signal{0};

extern "C" void launcher_on_signal(int sig) { g_launcher_signal = sig; }

std::string self_exe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  LS_CHECK(n > 0, "--nproc: cannot find this program's path (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

pid_t start_rank(const std::string& exe, const std::vector<std::string>& args, int rank, int nproc, int port,
                 int threads) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  LS_CHECK(pid >= 0, "--nproc: fork failed (", std::strerror(errno), ")");
  if (pid != 0) return pid;
  ::setpgid(0, 0);                       // out of the terminal's group: Ctrl-C comes from the launcher
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);    // a killed launcher takes its ranks along
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  ::setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 0);  // torchrun sets it too
  std::vector<std::string> argv{exe};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> p;
  for (std::string& a : argv) p.push_back(a.data());
  p.push_back(nullptr);
  ::execv(exe.c_str(), p.data());
  std::fprintf(stderr, "error: --nproc: cannot start %s (%s)\n", exe.c_str(), std::strerror(errno));
  ::_exit(127);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

}  // namespace

const std::vector<std::string>& command_line() { return g_command_line; }

void set_command_line(int argc, char** argv) { g_command_line.assign(argv + (argc > 0 ? 1 : 0), argv + argc); }

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  LS_CHECK(fd >= 0, "--nproc: cannot open a socket (", std::strerror(errno), ")");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  LS_CHECK(ok, "--nproc: no free TCP port on 127.0.0.1 (", std::strerror(errno), "); set MASTER_PORT and start the ",
           "ranks yourself");
  return ntohs(addr.sin_port);
}

int launch_local_ranks(const std::vector<std::string>& args, int nproc, std::chrono::seconds grace) {
  LS_CHECK(nproc >= 1, "--nproc must be at least 1, got ", nproc);
  const std::string exe = self_exe();
  const int port = std::getenv("MASTER_PORT") ? std::atoi(std::getenv("MASTER_PORT")) : free_local_port();
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::max(1, cores / nproc);
  // Forward, do not act: the ranks decide together where to stop and rank 0 saves the state.
  struct sigaction sa {};
  sa.sa_handler = launcher_on_signal;
  ::sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) pids.push_back(start_rank(exe, args, r, nproc, port, threads));
  int first_failure = 0, running = nproc;
  std::chrono::steady_clock::time_point failed_at{};
  bool terminated = false, killed = false;
  while (running > 0) {
    if (const int sig = g_launcher_signal.exchange(0); sig != 0) {
      for (const pid_t pid : pids)
        if (pid > 0) ::kill(pid, sig);
    }
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      for (pid_t& pid : pids)
        if (pid == done) pid = -1;
      --running;
      const int code = exit_code_of(status);
      if (code != 0 && first_failure == 0) {
        first_failure = code;
        failed_at = std::chrono::steady_clock::now();
      }
      continue;
    }
    if (first_failure != 0) {
      // A rank failed: the others normally stop by themselves within moments (their collectives
      // fail); past the grace they are stopped.
      const auto waited = std::chrono::steady_clock::now() - failed_at;
      const int sig = !terminated && waited > grace ? SIGTERM : !killed && waited > grace + std::chrono::seconds(10) ? SIGKILL : 0;
      if (sig != 0) {
        (sig == SIGTERM ? terminated : killed) = true;
        std::fprintf(stderr, "lorastudio: a rank failed; stopping the %d rank(s) still running\n", running);
        for (const pid_t pid : pids)
          if (pid > 0) ::kill(pid, sig);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return first_failure;  // an interrupted rank exits 130 itself
}

}  // namespace ls::cli
