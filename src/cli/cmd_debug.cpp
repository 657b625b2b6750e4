// `lorastudio debug ...`: stable interfaces that tests and the parity suite call.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/error.h"

namespace ls::cli {

void register_debug(CLI::App& app) {
  auto* debug = app.add_subcommand("debug", "Low-level tools: tokenize, forward one component, make a test model");
  debug->require_subcommand(1);
}

}  // namespace ls::cli
