// Every lorastudio command registers itself on the CLI11 app; its callback runs the command.
#pragma once

#include <CLI/CLI.hpp>

namespace ls::cli {

/// `lorastudio debug ...` (cmd_debug.cpp), which calls the three below.
void register_debug(CLI::App& app);
void register_debug_tokenize(CLI::App& debug);    // cmd_debug_tokenize.cpp
void register_debug_forward(CLI::App& debug);     // cmd_debug_forward.cpp
void register_debug_make_model(CLI::App& debug);  // cmd_debug_make_model.cpp

}  // namespace ls::cli
