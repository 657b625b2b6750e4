// `lorastudio review SHEETDIR`: serves the sheet's review page on 127.0.0.1 (printing its URL as
// the first line on stdout) until Ctrl+C / SIGTERM, or with --static writes it as one HTML file.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "core/error.h"
#include "sheet/review_page.h"
#include "sheet/review_server.h"
#include "sheet/review_store.h"

namespace ls::cli {

namespace {

struct ReviewOptions {
  std::string sheet_dir;
  int port = 0;
  std::string static_out;
};

void write_static_review(const ReviewOptions& o) {
  sheet::ReviewStore store(o.sheet_dir);
  sheet::write_static_review_page(store, o.static_out);
  std::printf("wrote %s: %zu cells, %zu with a choice; open it in a browser, changes stay in that browser"
              " until you download selections.json\n",
              o.static_out.c_str(), store.sheet().cells.size(), store.selections().size());
}

// SIGINT/SIGTERM are blocked in every thread (httplib's workers inherit the mask) and taken by
// one watcher with sigtimedwait, so stopping the server never runs inside a signal handler.
void serve_review(const ReviewOptions& o) {
  sheet::ReviewServer server(o.sheet_dir);
  server.bind(o.port);
  sigset_t stop_signals, previous;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &previous);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    timespec tick{0, 100 * 1000 * 1000};
    bool stopping = false;
    while (!done) {
      if (sigtimedwait(&stop_signals, nullptr, &tick) > 0) stopping = true;
      if (stopping) server.stop();  // repeated: a signal may come before the accept loop runs
    }
  });
  std::printf("%s\n", server.url().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "review: serving %s on %s (Ctrl+C stops)\n", o.sheet_dir.c_str(), server.url().c_str());
  server.serve();
  done = true;
  watcher.join();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
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
