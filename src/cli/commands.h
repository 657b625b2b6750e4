// Every lorastudio command registers itself on the CLI11 app; its callback runs the command.
#pragma once

#include <CLI/CLI.hpp>

namespace ls::cli {

/// `lorastudio debug tokenize | forward | make-model` (cmd_debug.cpp).
void register_debug(CLI::App& app);

}  // namespace ls::cli
