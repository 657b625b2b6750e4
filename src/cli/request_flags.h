// The request fields (sample/request.h) as command-line flags, the same in `sample` and `sheet`:
// --<name> with the older spellings as aliases, the help and the default shown in --help.
#pragma once

#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "sample/request.h"

namespace ls::cli {

/// One flag per request field, storing the text in values[name]; `defaults` gives the default
/// shown in --help. -p and -n stay the short forms of --prompt and --negative_prompt.
void add_request_flags(CLI::App& cmd, const sample::ImageSettings& defaults, std::map<std::string, std::string>& values);

}  // namespace ls::cli
