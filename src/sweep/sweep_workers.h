// `sweep --devices cuda:0,cuda:1`: one worker process per device, each `lorastudio sweep` with
// its own --device and shard, sharing the sweep folder. The workers coordinate only through what
// every worker already uses (the per-run locks of run_lock.h), so this is the same as a shell
// loop or a scheduler starting them: no scheduling of our own.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace ls::sweep {

/// "cuda:0,cuda:1" -> {"cuda:0", "cuda:1"}; each checked as a torch device name. A device may be
/// named twice (two workers sharing it: "cpu,cpu" on a machine with cores to spare).
std::vector<std::string> parse_device_list(const std::string& text);

struct WorkerOptions {
  std::string executable;              // this program (/proc/self/exe)
  std::vector<std::string> arguments;  // "sweep FILE ..." without --shard and --device
  std::vector<std::string> devices;
  std::string log_dir;                 // worker i's stderr (progress, notes) -> <log_dir>/worker-<i>.log
  std::function<void(const std::string&)> print;
};

/// Starts one worker per device (worker i: --shard i/N --device devices[i]; OMP_NUM_THREADS =
/// cores / N unless set, as for `train --nproc`), passes SIGINT and
/// SIGTERM on to them, waits for all. Returns the highest exit status (128 + signal for a killed
/// worker): 0 when every worker finished its runs.
int run_device_workers(const WorkerOptions& options);

}  // namespace ls::sweep
