// run_training: a resume's checks against its state, the data-parallel group, the session, then
// the trainer.
#include <filesystem>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/strings.h"
#include "dist/process_group.h"
#include "train/train_session.h"
#include "train/train_state.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace ls::train {
namespace {

// The saved run's config is the TOML it wrote into the state (absolute paths): read back with the
// same key table, compared key by key.
void require_same_training(const std::string& state_dir, const std::string& saved_toml, const TrainConfig& now) {
  const TrainConfig saved = parse_train_config(saved_toml, state_dir + "/state.json (config)", "");
  std::string diff;
  for (const std::string& change : resume_changes(saved, now)) diff += (diff.empty() ? "" : ", ") + change;
  LS_CHECK(diff.empty(), state_dir, ": the resumed run must train with the saved settings; changed: ", diff);
}

// A state records the world size it was written with: the images of each step (and so every
// draw) depend on it, so a resume must run with as many ranks.
void require_same_world(const std::string& state_dir, const TrainStateInfo& saved, const TrainConfig& now,
                        int world_size) {
  LS_CHECK(saved.world_size == world_size, state_dir, ": the state was saved by a run of ", saved.world_size,
           " rank(s); resume it with ", saved.world_size, saved.world_size > 1 ? " ranks (--nproc " : " rank (without --nproc",
           saved.world_size > 1 ? std::to_string(saved.world_size) + ", or WORLD_SIZE=" + std::to_string(saved.world_size) : "",
           "): the images of every step depend on the number of ranks");
  LS_CHECK(saved.format >= 2 || now.gradient_accumulation_steps == 1, state_dir,
           ": the state was written by an older lorastudio whose steps with gradient_accumulation_steps > 1 took ",
           "other images; it cannot be continued exactly, start the training again");
}

}  // namespace

TrainResult run_training(TrainConfig config, const TrainHooks& hooks, const dist::DistEnv& env) {
  // A run killed mid-write left temps (and maybe a state swapped out): tidied before the resume
  // is read, by the rank that writes the files.
  if (env.rank == 0 && !config.output_dir.empty()) {
    core::clean_interrupted_writes(config.output_dir);
    core::clean_interrupted_writes(fs::path(config.output_dir) / "sample");
  }
  std::optional<TrainStateInfo> resumed;
  if (!config.resume.empty()) {
    resumed = read_train_state_info(config.resume);
    // The saved run's seed (possibly drawn at random) continues unless one is given.
    if (!config.seed) config.seed = resumed->seed;
  }
  std::unique_ptr<dist::ProcessGroup> group;
  if (env.launched) {
    // One GPU per rank on its machine: "cuda" means the local rank's.
    if (core::ascii_lower(config.device) == "cuda") config.device = "cuda:" + std::to_string(env.local_rank);
    const double minutes = config.ddp_timeout.value_or(30.0);
    group = dist::ProcessGroup::join(env, core::parse_device(config.device),
                                     std::chrono::milliseconds(static_cast<int64_t>(minutes * 60000)));
  }
  if (resumed) require_same_world(config.resume, *resumed, config, env.world_size);
  std::vector<std::string> notes;
  std::unique_ptr<TrainSession> session = build_session(config, notes, group.get());
  TrainSession& s = *session;
  if (hooks.print && s.rank == 0) {
    for (const std::string& line : session->cache_reports) hooks.print(line);
    for (const std::string& n : notes) hooks.print("note: " + n);
  }
  if (resumed) {
    require_same_training(config.resume, resumed->config_toml, s.config);
    load_train_state(config.resume, *s.network, *s.optimizer);
  }
  if (s.rank == 0) {
    fs::create_directories(s.config.output_dir);
    core::write_file_atomic(fs::path(s.config.output_dir) / (s.config.output_name + "-train.toml"),
                            train_config_toml(s.config));
  }
  return run_session(std::move(session), hooks, resumed ? &*resumed : nullptr);
}

}  // namespace ls::train
