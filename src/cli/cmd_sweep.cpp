// `lorastudio sweep SWEEP.toml`: train every run of a sweep (skipping finished ones, resuming
// interrupted ones), `--dry-run` to list them, `--shard I/N` for one worker's share;
// `lorastudio sweep status SWEEP.toml`: one row per run.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/strings.h"
#include "sweep/sweep_runner.h"

namespace ls::cli {

namespace {

struct SweepCommand {
  std::string file, shard, status_file;
  bool dry_run = false;
  double heartbeat_timeout = 120;
};

/// "I/N" -> (I, N).
std::pair<size_t, size_t> parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  int64_t i = -1, n = 0;
  const bool ok = slash != std::string::npos && core::parse_int64(text.substr(0, slash), i) &&
                  core::parse_int64(text.substr(slash + 1), n) && n >= 1 && i >= 0 && i < n;
  LS_CHECK(ok, "--shard '", text, "': expected I/N with 0 <= I < N, e.g. --shard 0/4 (Slurm: $SLURM_ARRAY_TASK_ID/N)");
  return {static_cast<size_t>(i), static_cast<size_t>(n)};
}

void print_line(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

std::string values_text(const sweep::SweepRun& run) {
  std::string out;
  for (const auto& [k, v] : run.values) out += (out.empty() ? "" : ", ") + k + "=" + v;
  return out.empty() ? "(base)" : out;
}

void print_status(const sweep::Sweep& s) {
  std::printf("%-32s %-8s %6s %8s %10s %8s  %s\n", "run", "state", "epochs", "steps", "loss_avg", "time", "values");
  for (const sweep::SweepRun& run : s.runs) {
    const sweep::RunStatus st = sweep::run_status(run);
    const char* state = st.record.state == sweep::RunState::kPending && st.steps > 0 ? "partial" : state_name(st.record.state);
    char loss[32] = "-";
    if (!std::isnan(st.loss_avg)) std::snprintf(loss, sizeof loss, "%.5f", st.loss_avg);
    char time[32] = "-";
    if (st.record.seconds > 0) std::snprintf(time, sizeof time, "%.0fs", st.record.seconds);
    std::printf("%-32s %-8s %6d %8lld %10s %8s  %s\n", run.label.c_str(), state, st.epochs_done,
                static_cast<long long>(st.steps), loss, time, values_text(run).c_str());
    if (st.record.state == sweep::RunState::kFailed) std::printf("  error: %s\n", st.record.error.c_str());
  }
}

void run_sweep_command(const SweepCommand& o) {
  LS_CHECK(!o.file.empty(), "sweep: no sweep file; pass SWEEP.toml (see docs/sweep.md)");
  const sweep::Sweep s = sweep::load_sweep(o.file);
  for (const std::string& n : s.notes) print_line("note: " + n);
  if (o.dry_run) {
    std::printf("sweep %s: %zu runs in %s\n", o.file.c_str(), s.runs.size(), s.output_dir.c_str());
    for (const sweep::SweepRun& run : s.runs)
      std::printf("  %-40s %-8s %s\n", (run.label + "-" + run.hash).c_str(), state_name(sweep::read_run_record(run).state),
                  values_text(run).c_str());
    return;
  }
  core::init_threads();
  sweep::SweepOptions options;
  if (!o.shard.empty()) std::tie(options.shard, options.shards) = parse_shard(o.shard);
  options.heartbeat_timeout = o.heartbeat_timeout;
  options.print = print_line;
  options.train_hooks.print = print_line;
  const sweep::SweepResult r = sweep::run_sweep(s, options);
  if (r.interrupted) {
    print_line("sweep interrupted: the run's state is saved; start the same command again to continue");
    std::exit(130);
  }
  std::printf("sweep %s: %lld trained, %lld skipped (done before), %lld failed\n", o.file.c_str(),
              static_cast<long long>(r.trained), static_cast<long long>(r.skipped), static_cast<long long>(r.failed));
  if (r.failed > 0) std::exit(1);
}

}  // namespace

void register_sweep(CLI::App& app) {
  auto o = std::make_shared<SweepCommand>();
  CLI::App* cmd = app.add_subcommand("sweep", "Train many LoRAs that differ in a few training keys (a grid and/or named variants)");
  cmd->add_option("sweep", o->file, "Sweep TOML: base, output_dir, [grid], [[variants]]");
  cmd->add_flag("--dry-run", o->dry_run, "List the runs and their state; train nothing");
  cmd->add_option("--shard", o->shard, "Take the runs with index % N == I (I/N), for workers started by a scheduler");
  cmd->add_option("--heartbeat_timeout", o->heartbeat_timeout,
                  "Seconds without a heartbeat after which another worker takes a run over")
      ->capture_default_str();
  CLI::App* status = cmd->add_subcommand("status", "One row per run: state, epochs, steps, last average loss, time");
  status->add_option("sweep", o->status_file, "Sweep TOML")->required();
  status->callback([o] { print_status(sweep::load_sweep(o->status_file)); });
  cmd->callback([o, cmd] {
    if (cmd->got_subcommand("status")) return;
    run_sweep_command(*o);
  });
}

}  // namespace ls::cli
