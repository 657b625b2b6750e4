// `lorastudio train [CONFIG.toml] [--key value ...]`: kohya's option names, a TOML config
// overridden by flags, resumable with --resume <state folder>. Every key of train/train_config.h
// is a flag; bool keys work as `--key` or `--key=false`.
#include <cstdio>
#include <cstdlib>
#include <map>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace ls::cli {
namespace {

struct TrainCommand {
  std::string config_file;
  std::map<std::string, std::string> values;  // key -> text, only for flags given
};

void run_train(TrainCommand& o, CLI::App& cmd) {
  std::vector<std::string> notes;
  std::vector<std::string> rest = cmd.remaining();
  if (!rest.empty() && rest.front().rfind("--", 0) != 0) {
    LS_CHECK(o.config_file.empty(), "train: give the config either first or with --config_file, not both");
    o.config_file = rest.front();
    rest.erase(rest.begin());
  }
  train::TrainConfig config = o.config_file.empty() ? train::TrainConfig{} : train::load_train_config(o.config_file, &notes);
  for (const train::TrainKeyInfo& key : train::train_keys())
    if (cmd.count("--" + key.name) > 0) train::set_train_key(config, key.name, o.values[key.name], &notes);
  // The rest: kohya keys taken only to be ignored (--xformers ...) or refused unless off, and
  // misspellings, which set_train_key names with a suggestion.
  for (size_t i = 0; i < rest.size(); ++i) {
    std::string key = rest[i], value;
    LS_CHECK(key.rfind("--", 0) == 0, "train: unexpected argument '", key, "'; options are --key value");
    key = key.substr(2);
    if (const size_t eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1), key = key.substr(0, eq);
    } else if (i + 1 < rest.size() && rest[i + 1].rfind("--", 0) != 0) {
      value = rest[++i];
    } else {
      value = "true";  // a bare flag
    }
    train::set_train_key(config, key, value, &notes);
  }
  for (const std::string& n : notes) std::printf("note: %s\n", n.c_str());
  std::fflush(stdout);
  train::TrainHooks hooks;
  hooks.print = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);  // before the progress lines on stderr
  };
  const train::TrainResult r = train::run_training(config, hooks);
  if (r.interrupted) {
    std::fflush(stdout);
    std::exit(130);  // the shell's code for a run stopped by SIGINT; the state is saved
  }
  std::printf("trained %lld steps\n  LoRA: %s\n  log: %s\n  loss curve: %s\n", static_cast<long long>(r.steps_done),
              r.final_lora.c_str(), r.log_path.c_str(), r.loss_curve.c_str());
  if (!r.last_state.empty()) std::printf("  state: %s\n", r.last_state.c_str());
}

}  // namespace

void register_train(CLI::App& app) {
  auto o = std::make_shared<TrainCommand>();
  CLI::App* cmd = app.add_subcommand("train", "Train an SDXL LoRA: lorastudio train [CONFIG.toml] [--key value ...] (kohya option names)");
  // The positional CONFIG is read from the extras (a CLI11 positional would swallow the value of
  // a kohya flag this command does not declare).
  cmd->add_option("--config_file", o->config_file, "Training config TOML (kohya's format); or give it first");
  for (const train::TrainKeyInfo& key : train::train_keys()) {
    std::string& slot = o->values[key.name];
    if (key.type == train::TrainKeyType::kBool) cmd->add_flag("--" + key.name + "{true}", slot, key.help);
    else cmd->add_option("--" + key.name, slot, key.help);
  }
  cmd->allow_extras();  // handled in run_train
  cmd->callback([o, cmd] { run_train(*o, *cmd); });
}

}  // namespace ls::cli
