// `lorastudio captions DIR|DATASET.toml`: serves the caption editor (docs/captions.md) on
// 127.0.0.1, printing its URL as the first line on stdout, until Ctrl+C / SIGTERM.
#include <cstdio>
#include <memory>

#include "caption/caption_server.h"
#include "cli/commands.h"
#include "cli/serve_until_signal.h"

namespace ls::cli {

namespace {

struct CaptionsCommand {
  caption::CaptionServerOptions server;
  int port = 0;
  bool no_recursive = false;
};

void serve_captions(CaptionsCommand& c) {
  c.server.recursive = !c.no_recursive;
  caption::CaptionServer server(c.server);
  server.bind(c.port);
  std::printf("%s\n", server.url().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "captions: %zu images of %s on %s (Ctrl+C stops)\n", server.image_count(),
               c.server.source.c_str(), server.url().c_str());
  serve_until_signal([&] { server.serve(); }, [&] { server.stop(); });
}

}  // namespace

void register_captions(CLI::App& app) {
  auto c = std::make_shared<CaptionsCommand>();
  auto* cmd = app.add_subcommand("captions", "Review and edit a dataset's captions in the browser (127.0.0.1 only)");
  cmd->add_option("source", c->server.source, "Folder of images (subfolders too), or a kohya dataset .toml")
      ->required();
  cmd->add_option("--port", c->port, "TCP port on 127.0.0.1 (0: any free port; the URL is printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--caption_extension,--caption-extension", c->server.caption_extension,
                  "Extension of the caption files of a folder (a TOML's subsets name their own)")
      ->capture_default_str();
  cmd->add_option("--tokenizer", c->server.tokenizer,
                  "CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz or a tokenizer folder): token counts against 75 / 225");
  cmd->add_flag("--no-recursive", c->no_recursive, "A folder: only its own images, not those of its subfolders");
  cmd->add_option("--web_dir", c->server.web_dir, "Development: read captions.{html,css,js} from DIR on every load")
      ->group("");  // hidden
  cmd->callback([c] { serve_captions(*c); });
}

}  // namespace ls::cli
