// `lorastudio train [CONFIG.toml] [--key value ...]`: kohya's option names, a TOML config
// overridden by flags, resumable with --resume <state folder>. Every key of train/train_config.h
// is a flag; bool keys work as `--key` or `--key=false`.
#include <cstdio>
#include <cstdlib>
#include <map>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
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
  train::TrainConfig config = o.config_file.empty() ? train::TrainConfig{} : train::load_train_config(o.config_file, &notes);
  for (const train::TrainKeyInfo& key : train::train_keys())
    if (cmd.count("--" + key.name) > 0) train::set_train_key(config, key.name, o.values[key.name]);
  for (const std::string& n : notes) std::printf("note: %s\n", n.c_str());
  const train::TrainResult r = train::run_training(config);
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
  CLI::App* cmd = app.add_subcommand("train", "Train an SDXL LoRA (kohya's options; a TOML config and/or flags)");
  cmd->add_option("config", o->config_file, "Training config TOML (kohya's --config_file format)");
  cmd->add_option("--config_file", o->config_file, "Same as the positional config");
  for (const train::TrainKeyInfo& key : train::train_keys()) {
    std::string& slot = o->values[key.name];
    if (key.type == train::TrainKeyType::kBool) cmd->add_flag("--" + key.name + "{true}", slot, key.help);
    else cmd->add_option("--" + key.name, slot, key.help);
  }
  cmd->callback([o, cmd] { run_train(*o, *cmd); });
}

}  // namespace ls::cli
