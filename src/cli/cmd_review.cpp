// `lorastudio review SHEETDIR`: serves the sheet's review page on 127.0.0.1 (printing its URL as
// the first line on stdout) until Ctrl+C / SIGTERM, or with --static writes it as one HTML file.
#include <cstdio>

#include "cli/commands.h"
#include "cli/serve_until_signal.h"
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

void serve_review(const ReviewOptions& o) {
  review::ReviewServer server(o.sheet_dir);
  server.bind(o.port);
  std::printf("%s\n", server.url().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "review: serving %s on %s (Ctrl+C stops)\n", o.sheet_dir.c_str(), server.url().c_str());
  serve_until_signal([&] { server.serve(); }, [&] { server.stop(); });
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
