// `lorastudio version` and `--version`: versions, devices, BLAS and threads, for bug reports.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/runtime_report.h"

namespace ls::cli {

std::string version_text() { return core::format_runtime_report(core::runtime_report()); }

void register_version(CLI::App& app) {
  // CLI11 prints the flag's text with a newline of its own.
  app.set_version_flag("--version", [] {
    std::string s = version_text();
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  });
  auto* cmd = app.add_subcommand("version", "Versions of lorastudio, torch, CUDA and cuDNN; devices, BLAS, threads");
  cmd->callback([] { std::fputs(version_text().c_str(), stdout); });
}

}  // namespace ls::cli
