// Running a sweep's runs one after another in one process: finished runs are skipped, an
// interrupted one resumes from its newest state, a failed one (bad loss, out of memory, bad
// input) is recorded with its error and the sweep goes on. Each run's outcome is
// <run folder>/sweep-run.json; the sweep's events go to <output_dir>/sweep-log.jsonl.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "sweep/sweep_file.h"
#include "train/trainer.h"

namespace ls::sweep {

enum class RunState { kPending, kDone, kFailed };
const char* state_name(RunState state);  // "pending", "done", "failed"

/// What sweep-run.json says of a run (kPending when it has none).
struct RunRecord {
  RunState state = RunState::kPending;
  std::string error;       // kFailed
  int64_t steps = 0;       // optimizer steps done
  double seconds = 0;      // training time of the last attempt
  std::string final_lora;  // kDone
};
RunRecord read_run_record(const SweepRun& run);

/// The run's newest training state (most optimizer steps), "" when it has none.
std::string newest_state(const SweepRun& run);

/// One row of `sweep status`: the record, and what the run's training log says so far.
struct RunStatus {
  RunRecord record;
  int64_t steps = 0;     // optimizer steps in the log
  int epochs_done = 0;   // epochs whose last step is in the log
  double loss_avg = 0;   // the log's last running average (NaN when there is no log)
};
RunStatus run_status(const SweepRun& run);

struct SweepOptions {
  /// This worker takes the runs whose index % shards == shard first; then it helps with what is
  /// left: runs no worker holds, and runs whose worker stopped renewing its lock (run_lock.h).
  size_t shard = 0, shards = 1;
  double heartbeat_timeout = 120;  // seconds without a heartbeat after which a run is taken over
  std::function<void(const std::string& line)> print;
  train::TrainHooks train_hooks;  // passed to every run (tests stop runs through it)
};

struct SweepResult {
  int64_t trained = 0, skipped = 0, failed = 0;
  bool interrupted = false;  // SIGINT (or a hook) stopped a run: its state is saved
};

/// Returns when every run is done or has failed (or on an interrupt).
SweepResult run_sweep(const Sweep& sweep, const SweepOptions& options);

}  // namespace ls::sweep
