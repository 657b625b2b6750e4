// Running a sweep; see sweep_runner.h.
#include "sweep/sweep_runner.h"

#include <cmath>
#include <filesystem>
#include <new>
#include <thread>
#include <algorithm>
#include <chrono>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/line_log.h"
#include "sweep/run_lock.h"
#include "train/train_log.h"
#include "train/train_state.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace ls::sweep {
namespace {

constexpr const char* kRecordFile = "sweep-run.json";

void write_record(const SweepRun& run, const RunRecord& r) {
  json values = json::object();
  for (const auto& [k, v] : run.values) values[k] = v;
  const json j = {{"label", run.label}, {"hash", run.hash},   {"values", values},         {"state", state_name(r.state)},
                  {"error", r.error},   {"steps", r.steps},   {"seconds", r.seconds},     {"final_lora", r.final_lora}};
  fs::create_directories(run.folder);
  core::write_file_atomic(fs::path(run.folder) / kRecordFile, j.dump(2) + "\n");
}

void log_event(const Sweep& sweep, json event) {
  fs::create_directories(sweep.output_dir);
  core::LineLog(fs::path(sweep.output_dir) / "sweep-log.jsonl").append(event.dump());
}

}  // namespace

const char* state_name(RunState state) {
  switch (state) {
    case RunState::kPending: return "pending";
    case RunState::kDone: return "done";
    case RunState::kFailed: return "failed";
  }
  return "?";
}

RunRecord read_run_record(const SweepRun& run) {
  RunRecord r;
  const fs::path file = fs::path(run.folder) / kRecordFile;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return r;
  json j;
  try {
    j = json::parse(core::read_file(file));
  } catch (const json::exception& e) {
    LS_FAIL(file.string(), ": not valid JSON (", e.what(), "); delete it to run ", run.label, " again");
  }
  const std::string state = j.value("state", "");
  r.state = state == "done" ? RunState::kDone : state == "failed" ? RunState::kFailed : RunState::kPending;
  r.error = j.value("error", "");
  r.steps = j.value("steps", int64_t{0});
  r.seconds = j.value("seconds", 0.0);
  r.final_lora = j.value("final_lora", "");
  return r;
}

std::string newest_state(const SweepRun& run) {
  std::string best;
  int64_t best_step = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run.folder, ec)) {
    if (!e.is_directory() || !fs::is_regular_file(e.path() / "state.json")) continue;
    const int64_t step = train::read_train_state_info(e.path().string()).position.global_step;
    if (step > best_step) best_step = step, best = e.path().string();
  }
  return best;
}

RunStatus run_status(const SweepRun& run) {
  RunStatus s;
  s.record = read_run_record(run);
  s.loss_avg = std::nan("");
  const fs::path log = fs::path(run.folder) / train::log_file_name(run.config.output_name);
  std::error_code ec;
  if (!fs::is_regular_file(log, ec)) return s;
  const auto records = train::read_step_records(log.string());
  if (records.empty()) return s;
  s.steps = records.back().step;
  s.loss_avg = records.back().loss_avg;
  // Epochs are 1-based in the log: the last one is done when a later one has begun or the run is.
  s.epochs_done = records.back().epoch - (s.record.state == RunState::kDone ? 0 : 1);
  return s;
}

namespace {

enum class Attempt { kTrained, kSkipped, kFailed, kBusy, kInterrupted };

/// Trains one run unless it is done or a live worker holds it.
Attempt attempt_run(const Sweep& sweep, const SweepRun& run, const SweepOptions& o) {
  const auto print = [&](const std::string& line) {
    if (o.print) o.print(line);
  };
  const std::string name = "run " + std::to_string(run.index + 1) + "/" + std::to_string(sweep.runs.size()) + " " + run.label;
  if (read_run_record(run).state == RunState::kDone) {
    print(name + ": done, skipped");
    return Attempt::kSkipped;
  }
  std::string holder;
  const std::unique_ptr<RunLock> lock = RunLock::try_take(run.folder, o.heartbeat_timeout, &holder);
  if (!lock) return Attempt::kBusy;
  if (read_run_record(run).state == RunState::kDone) return Attempt::kSkipped;  // finished while we looked
  train::TrainConfig config = run.config;
  config.resume = newest_state(run);
  print(name + (config.resume.empty() ? ": training" : ": resuming from " + config.resume));
  log_event(sweep, {{"event", "run_start"}, {"run", run.label}, {"resume", config.resume}, {"worker", lock->owner()}});
  RunRecord record;
  const double start = core::monotonic_seconds();
  try {
    const train::TrainResult r = train::run_training(config, o.train_hooks);
    record.steps = r.steps_done;
    if (r.interrupted) {
      log_event(sweep, {{"event", "run_interrupted"}, {"run", run.label}, {"steps", r.steps_done}});
      return Attempt::kInterrupted;
    }
    record.state = RunState::kDone;
    record.final_lora = r.final_lora;
  } catch (const std::bad_alloc&) {
    record.state = RunState::kFailed;
    record.error = "out of memory (host)";
  } catch (const Error& e) {
    record.state = RunState::kFailed;
    record.error = e.what();
  } catch (const c10::Error& e) {  // CUDA out of memory and other torch errors
    record.state = RunState::kFailed;
    record.error = e.what_without_backtrace();
  }
  record.seconds = core::monotonic_seconds() - start;
  write_record(run, record);
  log_event(sweep, {{"event", record.state == RunState::kDone ? "run_done" : "run_failed"}, {"run", run.label},
                    {"steps", record.steps}, {"seconds", record.seconds}, {"error", record.error}});
  print(name + (record.state == RunState::kDone ? ": done (" + std::to_string(record.steps) + " steps)"
                                                 : ": failed: " + record.error));
  return record.state == RunState::kDone ? Attempt::kTrained : Attempt::kFailed;
}

}  // namespace

SweepResult run_sweep(const Sweep& sweep, const SweepOptions& o) {
  LS_CHECK(o.shards >= 1 && o.shard < o.shards, "sweep: shard ", o.shard, "/", o.shards, " does not exist; use I/N with 0 <= I < N");
  LS_CHECK(o.heartbeat_timeout > 0, "sweep: the heartbeat timeout must be positive");
  SweepResult result;
  std::vector<bool> settled(sweep.runs.size(), false);  // done, failed, or tried by this worker
  const auto count = [&](size_t i, Attempt a) {
    if (a == Attempt::kBusy) return;
    settled[i] = true;
    result.trained += a == Attempt::kTrained;
    result.skipped += a == Attempt::kSkipped;
    result.failed += a == Attempt::kFailed;
    result.interrupted = result.interrupted || a == Attempt::kInterrupted;
  };
  // This worker's share first, then whatever is left (held by others, who may have died).
  for (const SweepRun& run : sweep.runs) {
    if (run.index % o.shards != o.shard) continue;
    count(run.index, attempt_run(sweep, run, o));
    if (result.interrupted) return result;
  }
  while (true) {
    bool waiting = false;
    for (const SweepRun& run : sweep.runs) {
      if (settled[run.index]) continue;
      const RunState state = read_run_record(run).state;
      if (state == RunState::kFailed) {  // another worker's failure: left for a rerun to retry
        settled[run.index] = true;
        continue;
      }
      const Attempt a = attempt_run(sweep, run, o);
      count(run.index, a);
      if (result.interrupted) return result;
      waiting = waiting || a == Attempt::kBusy;
    }
    if (!waiting) return result;
    std::this_thread::sleep_for(std::chrono::duration<double>(std::min(o.heartbeat_timeout / 4, 5.0)));
  }
}

}  // namespace ls::sweep
