// placeholder until the command lands; registers nothing.
#include "cli/commands.h"

namespace ls::cli {
void register_debug_make_model(CLI::App& debug) { (void)debug; }
}  // namespace ls::cli
