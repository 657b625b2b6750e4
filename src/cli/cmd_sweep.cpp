// `lorastudio sweep SWEEP.toml`: train every run of a sweep (skipping finished ones, resuming
// interrupted ones), then render the sweep's sheet; `--dry-run` to plan them, `--shard I/N` for
// one worker's share, `--devices` for one worker per device;
// `lorastudio sweep status SWEEP.toml`: one row per run; `lorastudio sweep sheet SWEEP.toml`: the
// comparison of what is trained so far.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/runtime.h"
#include "core/strings.h"
#include "sweep/sweep_runner.h"
#include "sweep/sweep_sheet.h"
#include "sweep/sweep_workers.h"
#include "train/train_log.h"
#include "train/train_session.h"

namespace ls::cli {

namespace {

struct SweepCommand {
  std::string file, shard, status_file, sheet_file, devices, device;
  bool dry_run = false, no_sheet = false;
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
  for (const auto& [k, v] : run.values) out += (out.empty() ? "" : ", ") + k + "=" + sweep::facet_value(k, v);
  return out.empty() ? "(base)" : out;
}

/// A run's state as status shows it: "partial" for a pending run that has trained steps.
const char* shown_state(const sweep::RunStatus& st) {
  return st.record.state == sweep::RunState::kPending && st.steps > 0 ? "partial" : state_name(st.record.state);
}

void print_status(const sweep::Sweep& s) {
  std::printf("%-32s %-8s %6s %8s %10s %8s  %s\n", "run", "state", "epochs", "steps", "loss_avg", "time", "values");
  for (const sweep::SweepRun& run : s.runs) {
    const sweep::RunStatus st = sweep::run_status(run);
    const char* state = shown_state(st);
    char loss[32] = "-";
    if (!std::isnan(st.loss_avg)) std::snprintf(loss, sizeof loss, "%.5f", st.loss_avg);
    char time[32] = "-";
    if (st.record.seconds > 0) std::snprintf(time, sizeof time, "%.0fs", st.record.seconds);
    std::printf("%-32s %-8s %6d %8lld %10s %8s  %s\n", run.label.c_str(), state, st.epochs_done,
                static_cast<long long>(st.steps), loss, time, values_text(run).c_str());
    if (st.record.state == sweep::RunState::kFailed) std::printf("  error: %s\n", st.record.error.c_str());
  }
}

/// The median step time of what the sweep's runs have logged (0 when nothing is logged yet).
double median_step_seconds(const sweep::Sweep& s) {
  std::vector<double> seconds;
  for (const sweep::SweepRun& run : s.runs) {
    const std::filesystem::path log = std::filesystem::path(run.folder) / train::log_file_name(run.config.output_name);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(log, ec)) continue;
    for (const auto& r : train::read_step_records(log.string()))
      if (r.seconds > 0) seconds.push_back(r.seconds);
  }
  if (seconds.empty()) return 0;
  std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2, seconds.end());
  return seconds[seconds.size() / 2];
}

void print_dry_run(const sweep::Sweep& s) {
  const double step_seconds = median_step_seconds(s);
  std::printf("sweep %s: %zu runs in %s\n", s.file.c_str(), s.runs.size(), s.output_dir.c_str());
  std::printf("  %-40s %-8s %7s %6s %12s %10s  %s\n", "run", "state", "epochs", "steps", "LoRA file", "time left", "values");
  int64_t steps_left = 0;
  for (const sweep::SweepRun& run : s.runs) {
    const sweep::RunStatus st = sweep::run_status(run);
    const train::TrainingPlan plan = train::plan_training(run.config);
    const int64_t left = st.record.state == sweep::RunState::kDone ? 0 : std::max<int64_t>(0, plan.max_steps - st.steps);
    steps_left += left;
    char size[32];
    std::snprintf(size, sizeof size, "%.1f MB", static_cast<double>(plan.lora_file_bytes) / 1e6);
    const std::string time = step_seconds > 0 ? core::Progress::format_duration(static_cast<double>(left) * step_seconds) : "-";
    const char* state = shown_state(st);
    std::printf("  %-40s %-8s %7d %6lld %12s %10s  %s\n", (run.label + "-" + run.hash).c_str(), state, plan.num_epochs,
                static_cast<long long>(plan.max_steps), size, time.c_str(), values_text(run).c_str());
  }
  if (step_seconds > 0) {
    std::printf("%lld steps left, about %s at %.3g s/step (the median step of the runs' logs)\n",
                static_cast<long long>(steps_left), core::Progress::format_duration(static_cast<double>(steps_left) * step_seconds).c_str(),
                step_seconds);
  } else {
    std::printf("%lld steps left; the time is estimated once a run has logged steps\n", static_cast<long long>(steps_left));
  }
  if (s.sheet.present) {
    const sweep::SweepSheetSpec& sh = s.sheet;
    std::printf("sheet: runs x chosen epochs x %zu strength(s) x %zu seed(s) x %zu prompt(s)\n", sh.strengths.size(),
                sh.seeds.size(), sh.prompts.size());
  }
}

void render_sheet(const sweep::Sweep& s) {
  const sweep::SweepSheetResult r = sweep::render_sweep_sheet(s);
  for (const std::string& n : r.notes) print_line("note: " + n);
  const sheet::SheetRunStats& st = r.stats;
  const std::string& dir = r.folder;
  std::printf("sheet %s: %lld cells, %lld rendered, %lld reused (%.1f s)\nreview: lorastudio review %s\n", dir.c_str(),
              static_cast<long long>(st.cells), static_cast<long long>(st.rendered), static_cast<long long>(st.reused),
              st.seconds, dir.c_str());
  std::fflush(stdout);
}

sweep::Sweep load_for_device(const std::string& file, const std::string& device) {
  sweep::Sweep s = sweep::load_sweep(file);
  if (!device.empty()) {
    (void)core::parse_device(device);
    for (sweep::SweepRun& run : s.runs) run.config.device = device;  // not part of a run's identity
  }
  return s;
}

void run_sweep_command(const SweepCommand& o) {
  LS_CHECK(!o.file.empty(), "sweep: no sweep file; pass SWEEP.toml (see docs/sweep.md)");
  const sweep::Sweep s = load_for_device(o.file, o.device);
  for (const std::string& n : s.notes) print_line("note: " + n);
  if (o.dry_run) return print_dry_run(s);
  core::init_threads();
  if (!o.devices.empty()) {
    LS_CHECK(o.shard.empty() && o.device.empty(), "sweep: --devices starts one worker per device itself; drop --shard / --device");
    sweep::WorkerOptions w;
    w.executable = std::filesystem::read_symlink("/proc/self/exe").string();
    w.arguments = {"sweep", o.file, "--no_sheet", "--heartbeat_timeout", core::format_double(o.heartbeat_timeout)};
    w.devices = sweep::parse_device_list(o.devices);
    w.log_dir = s.output_dir;
    w.print = print_line;
    const int code = sweep::run_device_workers(w);
    if (code != 0) {
      print_line("sweep: a worker exited " + std::to_string(code) + "; `lorastudio sweep status " + o.file + "` shows the runs");
      std::exit(code);
    }
  } else {
    sweep::SweepOptions options;
    if (!o.shard.empty()) std::tie(options.shard, options.shards) = parse_shard(o.shard);
    options.heartbeat_timeout = o.heartbeat_timeout;
    const std::string prefix = o.device.empty() ? "" : "[" + o.device + "] ";
    options.print = [prefix](const std::string& line) { print_line(prefix + line); };
    options.train_hooks.print = options.print;
    const sweep::SweepResult r = sweep::run_sweep(s, options);
    if (r.interrupted) {
      print_line(prefix + "sweep interrupted: the run's state is saved; start the same command again to continue");
      std::exit(130);
    }
    std::printf("%ssweep %s: %lld trained, %lld skipped (done before), %lld failed\n", prefix.c_str(), o.file.c_str(),
                static_cast<long long>(r.trained), static_cast<long long>(r.skipped), static_cast<long long>(r.failed));
    std::fflush(stdout);
    if (r.failed > 0) std::exit(1);
  }
  if (o.no_sheet) return;
  const std::string loss = (std::filesystem::path(s.output_dir) / "sweep-loss.png").string();
  if (sweep::write_sweep_loss_curves(s, loss)) print_line("loss curves of every run: " + loss);
  if (s.sheet.present) render_sheet(s);
}

}  // namespace

void register_sweep(CLI::App& app) {
  auto o = std::make_shared<SweepCommand>();
  CLI::App* cmd = app.add_subcommand("sweep", "Train many LoRAs that differ in a few training keys (a grid and/or named variants)");
  cmd->add_option("sweep", o->file, "Sweep TOML: base, output_dir, [grid], [[variants]], [sheet]");
  cmd->add_flag("--dry-run", o->dry_run,
                "List the runs: state, epochs, steps, predicted LoRA file size, time left once a step time is known; train nothing");
  cmd->add_option("--shard", o->shard, "Take the runs with index % N == I (I/N), for workers started by a scheduler");
  cmd->add_option("--devices", o->devices, "One worker per device at once, e.g. cuda:0,cuda:1 (each run on one device)");
  cmd->add_option("--device", o->device, "Train every run on this device (overrides the file's; not part of a run's identity)");
  cmd->add_flag("--no_sheet", o->no_sheet, "Do not write the loss plot and the [sheet] after training");
  cmd->add_option("--heartbeat_timeout", o->heartbeat_timeout,
                  "Seconds without a heartbeat after which another worker takes a run over")
      ->capture_default_str();
  CLI::App* status = cmd->add_subcommand("status", "One row per run: state, epochs, steps, last average loss, time");
  status->add_option("sweep", o->status_file, "Sweep TOML")->required();
  status->callback([o] { print_status(sweep::load_sweep(o->status_file)); });
  CLI::App* sheet = cmd->add_subcommand(
      "sheet", "One contact sheet across the runs x epochs x strengths x seeds x prompts of [sheet] (only new cells render)");
  sheet->add_option("sweep", o->sheet_file, "Sweep TOML with a [sheet] table")->required();
  sheet->callback([o] {
    core::init_threads();
    render_sheet(sweep::load_sweep(o->sheet_file));
  });
  cmd->callback([o, cmd] {
    if (cmd->got_subcommand("status") || cmd->got_subcommand("sheet")) return;
    run_sweep_command(*o);
  });
}

}  // namespace ls::cli
