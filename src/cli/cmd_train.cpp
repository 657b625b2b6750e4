// `lorastudio train [CONFIG.toml] [--key value ...]`: kohya's option names, a TOML config
// overridden by flags, resumable with --resume <state folder>. Every key of train/train_config.h
// is a flag; bool keys work as `--key` or `--key=false`.
#include <cstdio>
#include <cstdlib>
#include <map>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/rank_launcher.h"
#include "core/error.h"
#include "dist/dist_env.h"
#include "train/train_config.h"
#include "train/trainer.h"

#include <torch/cuda.h>

namespace ls::cli {
namespace {

struct TrainCommand {
  std::string config_file;
  std::map<std::string, std::string> values;  // key -> text, only for flags given
  std::string nproc;  // --nproc N | auto
};

// The command line without --nproc: what each rank runs.
std::vector<std::string> rank_args() {
  std::vector<std::string> out;
  const std::vector<std::string>& all = command_line();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i] == "--nproc") {
      ++i;
      continue;
    }
    if (all[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(all[i]);
  }
  return out;
}

int nproc_of(const std::string& text, const std::string& device) {
  if (text == "auto") {
    LS_CHECK(device.rfind("cuda", 0) == 0, "--nproc auto starts one rank per visible GPU; with --device ", device,
             " give the number of ranks (--nproc 2)");
    const int gpus = static_cast<int>(torch::cuda::device_count());
    LS_CHECK(gpus > 0, "--nproc auto: no GPU is visible (CUDA_VISIBLE_DEVICES?)");
    return gpus;
  }
  char* end = nullptr;
  const long n = std::strtol(text.c_str(), &end, 10);
  LS_CHECK(end && *end == '\0' && n >= 1 && n <= 1024, "--nproc '", text, "' is not a number of ranks (1..1024) or auto");
  return static_cast<int>(n);
}

void run_train(TrainCommand& o, CLI::App& cmd) {
  const dist::DistEnv env = dist::dist_env();
  if (!o.nproc.empty()) {
    LS_CHECK(!env.launched, "--nproc: this process is already rank ", env.rank, " of ", env.world_size,
             " (RANK is set by torchrun or Slurm); drop --nproc or the launcher");
  }
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
  if (!o.nproc.empty()) {
    // The launcher: every rank parses this same command line again (and reports its own errors).
    const int nproc = nproc_of(o.nproc, config.device);
    std::fflush(stdout);
    std::exit(launch_local_ranks(rank_args(), nproc, std::chrono::seconds(30)));
  }
  if (env.rank == 0)
    for (const std::string& n : notes) std::printf("note: %s\n", n.c_str());
  std::fflush(stdout);
  train::TrainHooks hooks;
  hooks.print = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);  // before the progress lines on stderr
  };
  train::TrainResult r;
  try {
    r = train::run_training(config, hooks, env);
  } catch (const Error& e) {
    // Each rank's error says which rank it is (several ranks share one terminal).
    const std::string what = e.what();
    if (!env.launched || what.rfind("rank ", 0) == 0) throw;
    throw Error(str_cat("rank ", env.rank, " of ", env.world_size, ": ", what));
  }
  if (r.interrupted) {
    std::fflush(stdout);
    std::exit(130);  // the shell's code for a run stopped by SIGINT; the state is saved
  }
  if (env.rank != 0) return;  // rank 0 reports the files it wrote
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
  cmd->add_option("--nproc", o->nproc,
                  "Data-parallel ranks to start on this machine: N, or auto (one per visible GPU); see docs/distributed.md");
  for (const train::TrainKeyInfo& key : train::train_keys()) {
    std::string& slot = o->values[key.name];
    if (key.type == train::TrainKeyType::kBool) cmd->add_flag("--" + key.name + "{true}", slot, key.help);
    else cmd->add_option("--" + key.name, slot, key.help);
  }
  cmd->allow_extras();  // handled in run_train
  cmd->callback([o, cmd] { run_train(*o, *cmd); });
}

}  // namespace ls::cli
