// `lorastudio review SHEETDIR`: serves the sheet's review page on 127.0.0.1 (printing its URL as
// the first line on stdout) until Ctrl+C / SIGTERM, or with --static writes it as one HTML file.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "core/error.h"
#include "review/review_page.h"
#include "review/review_server.h"
#include "review/review_store.h"

namespace ls::cli {

namespace {

struct ReviewOptions {
  std::string sheet_dir;
  int port = 0;
  std::string static_out;
};

void write_static_review(const ReviewOptions& o) {
  review::ReviewStore store(o.sheet_dir);
  review::write_static_review_page(store, o.static_out);
  std::printf("wrote %s: %zu cells, %zu with a choice; open it in a browser, changes stay in that browser"
              " until you download selections.json\n",
              o.static_out.c_str(), store.sheet().cells.size(), store.selections().size());
}

// A process-wide handler only raises a flag (async-signal-safe, whichever thread the signal lands
// on: libtorch and OpenMP may have started threads before this command runs, so blocking the
// signals in this thread would not cover them); a watcher thread turns the flag into stop().
std::atomic<bool> g_stop_requested{false};

extern "C" void on_stop_signal(int) { g_stop_requested.store(true); }

void serve_review(const ReviewOptions& o) {
  review::ReviewServer server(o.sheet_dir);
  server.bind(o.port);
  struct sigaction action {}, old_int {}, old_term {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done) {
      if (g_stop_requested.load()) server.stop();  // repeated: a signal may come before the accept loop runs
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::printf("%s\n", server.url().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "review: serving %s on %s (Ctrl+C stops)\n", o.sheet_dir.c_str(), server.url().c_str());
  server.serve();
  done = true;
  watcher.join();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
}

}  // namespace

void register_review(CLI::App& app) {
  auto opts = std::make_shared<ReviewOptions>();
  auto* cmd = app.add_subcommand("review", "Pick and reject the images of a sheet in the browser (127.0.0.1 only)");
  cmd->add_option("SHEETDIR", opts->sheet_dir, "Folder written by `lorastudio sheet` (sheet.json, cells/)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--port", opts->port, "TCP port on 127.0.0.1 (0: any free port; the URL is printed)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--static", opts->static_out,
                  "Write the page as one self-contained HTML file (images inlined) instead of serving");
  cmd->callback([opts] {
    if (opts->static_out.empty()) {
      serve_review(*opts);
    } else {
      write_static_review(*opts);
    }
  });
}

}  // namespace ls::cli
