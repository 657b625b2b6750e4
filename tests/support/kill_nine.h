// The kill -9 tests' tools: a lorastudio child SIGKILLed at a chosen moment — a time after its
// start, or while it is writing a file (frozen with SIGSTOP the moment a temp name appears, and
// killed only if that temp is still there, so "during a write" is certain, not lucky) — and the
// temp names a killed writer leaves behind. The moments come from a seeded generator whose seed
// each test prints ($LS_TEST_SEED replays a failure).
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace ls::test {

/// When to kill a child.
struct KillAt {
  double seconds = 0;   // nth_write == 0: SIGKILL this long after the start
  int nth_write = 0;    // > 0: SIGKILL at the nth temp file or folder created under `watch` (or the
                        // first one after it still being written when the child is frozen)
  std::filesystem::path watch;  // the folder whose writes count, with the folders made inside it
};

struct KillOutcome {
  bool killed = false;  // false: the child exited first
  int exit_code = -1;   // when it exited
  int writes_seen = 0;  // temp names created under `watch` while it ran
  std::string temp;     // a write kill: the temp being written when the child died
  double seconds = 0;   // from the start to the kill or the exit
  std::string describe() const;
};

/// Starts argv (see spawn: OMP_NUM_THREADS=1, output appended to `log`) and ends it as `at` says;
/// with no kill due (nth_write beyond its writes, seconds beyond its run) it runs to its end.
/// `watch` (when not empty) also counts the writes of a run that is not killed.
KillOutcome run_and_kill(const std::vector<std::string>& argv, const KillAt& at, const std::string& log = "/dev/null");

/// What a kill of a resumable command is drawn in: an uninterrupted run's time and temp writes.
struct RunShape {
  double startup = 0;  // seconds before its work starts (loading, planning): a run with nothing left
  double work = 0;     // seconds of its work after that
  int writes = 0;      // temp writes of its work
};

/// A random kill inside what a run has left: with equal odds a time in
/// [0, 0.9 (startup + time_left work)] or the nth of the first ceil(0.8 writes_left writes) temp
/// writes under `watch` (`*_left`: the share of the work still to do, 0..1). The margins keep a run
/// a little faster than the uninterrupted one, or one writing a little less, killed; one that ends
/// anyway ends its chain (the caller checks it and starts another).
KillAt random_kill(std::mt19937_64& rng, const RunShape& shape, double time_left, double writes_left,
                   const std::filesystem::path& watch);

/// Whether `name` is what lorastudio writes before renaming: AtomicFile's "<name>.tmp.<pid>", a
/// state folder's "<name>.tmp-<pid>" or the ".old-<pid>" it swaps out.
bool is_temp_name(const std::string& name);

/// Every entry under `dir` (recursive) with a temp name, relative to `dir`.
std::vector<std::string> temp_entries(const std::filesystem::path& dir);

/// A randomised test's seed: $LS_TEST_SEED when set, else drawn; printed with `test` so a failing
/// run can be replayed.
uint64_t random_test_seed(const std::string& test);

}  // namespace ls::test
