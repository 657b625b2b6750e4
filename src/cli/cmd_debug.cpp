// `lorastudio debug ...`: stable interfaces that tests and the parity suite call.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace ls::cli {

void register_debug(CLI::App& app) {
  auto* debug = app.add_subcommand("debug", "Low-level tools: tokenize, forward one component, one training step, make a test model, run a tagger");
  debug->require_subcommand(1);
  register_debug_tokenize(*debug);
  register_debug_forward(*debug);
  register_debug_make_model(*debug);
  register_debug_train_step(*debug);
  register_debug_tagger(*debug);
  register_debug_florence2(*debug);
  register_debug_dist(*debug);
}

}  // namespace ls::cli
