#include "cli/serve_until_signal.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace ls::cli {

namespace {

// A process-wide handler only raises a flag (async-signal-safe, whichever thread the signal lands
// on: libtorch and OpenMP may have started threads before this command runs, so blocking the
// signals in this thread would not cover them); a watcher thread turns the flag into stop().
std::atomic<bool> g_stop_requested{false};

extern "C" void on_stop_signal(int) { g_stop_requested.store(true); }

}  // namespace

void serve_until_signal(const std::function<void()>& serve, const std::function<void()>& stop) {
  g_stop_requested = false;
  struct sigaction action {}, old_int {}, old_term {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done) {
      if (g_stop_requested.load()) stop();  // repeated: a signal may come before the accept loop runs
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  serve();
  done = true;
  watcher.join();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
}

}  // namespace ls::cli
