// lorastudio entry point: parses the command line, runs one command, and turns any error into
// one line on stderr and a non-zero exit code.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/rank_launcher.h"
#include "core/error.h"
#include "core/runtime.h"

int main(int argc, char** argv) {
  ls::cli::set_command_line(argc, argv);  // `train --nproc` starts it again as each rank
  CLI::App app{"lorastudio: caption, train, sample and review SDXL LoRAs"};
  app.require_subcommand(1);
  ls::cli::register_version(app);
  ls::cli::register_caption(app);
  ls::cli::register_captions(app);
  ls::cli::register_dataset(app);
  ls::cli::register_train(app);
  ls::cli::register_sweep(app);
  ls::cli::register_sample(app);
  ls::cli::register_sheet(app);
  ls::cli::register_review(app);
  ls::cli::register_plan(app);
  ls::cli::register_lora(app);
  ls::cli::register_merge(app);
  ls::cli::register_debug(app);
  ls::core::init_threads();
  try {
    app.parse(argc, argv);  // the chosen command runs in its callback
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ls::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
