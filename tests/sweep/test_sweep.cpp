// sweep: the sweep file (runs of a grid and variants, labels, hashes, defaults; errors with file
// and line before anything trains) and the runner on the tiny model (a 2 x 2 sweep trains 4 runs
// x 2 epochs; run again it trains nothing; stopped or SIGKILLed in its third run and started
// again it ends with the same bytes as an uninterrupted sweep and trains no finished run twice;
// two --shard workers train each run once and take over a dead worker's run).
#include <chrono>
#include <csignal>
#include <filesystem>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "support/support.h"
#include "support/training_data.h"
#include "sweep/run_lock.h"
#include "sheet/sheet_file.h"
#include "sweep/sweep_runner.h"
#include "sweep/sweep_sheet.h"
#include "sweep/sweep_workers.h"
#include "train/train_session.h"

namespace fs = std::filesystem;

namespace ls {
namespace {

class SweepTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);  // ctest runs two binaries at once on two cores
    dir_ = new test::TempDir();
    test::write_tiny_checkpoint(*dir_ / "tiny.safetensors");
    toml_ = test::write_training_dataset(*dir_ / "data", 0);
  }
  static void TearDownTestSuite() { delete dir_; }

  // A sweep file in `name`/ beside the model: [base] on the tiny model, then `rest`.
  static std::string sweep_file(const std::string& name, const std::string& rest) {
    const fs::path folder = *dir_ / name;
    fs::create_directories(folder);
    const std::string text = "output_dir = \"runs\"\n"
                             "[base]\n"
                             "pretrained_model_name_or_path = \"" + (*dir_ / "tiny.safetensors").string() + "\"\n"
                             "dataset_config = \"" + toml_ + "\"\n"
                             "tokenizer = \"" + std::string(test::kClipVocab) + "\"\n"
                             "output_name = \"tiny\"\n"
                             "network_alpha = 2\n"
                             "max_train_epochs = 2\n" + rest;
    core::write_file_atomic(folder / "sweep.toml", text);
    return (folder / "sweep.toml").string();
  }

  static std::string error_of(const std::string& rest) {
    return test::error_of([&] { sweep::load_sweep(sweep_file("bad", rest)); });
  }

  static inline test::TempDir* dir_ = nullptr;
  static inline std::string toml_;
};

const std::string kGrid = "[grid]\nlearning_rate = [1e-3, 5e-4]\nnetwork_dim = [2, 4]\n";
const std::string kGridSmall = "[grid]\nlearning_rate = [1e-3, 5e-4]\n";
const std::string kSheetSmall = "[sheet]\nprompts = [\"a\", \"b\"]\nsampler = \"Euler a\"\nseed = 3\nsteps = 3\nevery_n_epochs = 2\n";

TEST_F(SweepTest, GridAndVariantsMakeLabelledRuns) {
  const sweep::Sweep s = sweep::load_sweep(sweep_file("plan", kGrid));
  ASSERT_EQ(s.runs.size(), 4u);
  EXPECT_EQ(s.varied_keys, (std::vector<std::string>{"learning_rate", "network_dim"}));
  const std::vector<std::string> labels = {"lr1e-3_dim2", "lr1e-3_dim4", "lr5e-4_dim2", "lr5e-4_dim4"};
  std::set<std::string> hashes;
  for (size_t i = 0; i < 4; ++i) {
    const auto& run = s.runs[i];
    EXPECT_EQ(run.label, labels[i]);
    EXPECT_EQ(run.hash.size(), 8u);
    hashes.insert(run.hash);
    EXPECT_EQ(run.folder, (*dir_ / "plan" / "runs" / (run.label + "-" + run.hash)).string());
    EXPECT_EQ(run.config.output_dir, run.folder);
    EXPECT_EQ(run.config.seed, std::optional<uint64_t>(0));  // unset: the same seed in every run
    EXPECT_EQ(run.config.save_every_n_epochs, std::optional<int>(1));
    EXPECT_TRUE(run.config.save_state);
  }
  EXPECT_EQ(hashes.size(), 4u);
  EXPECT_EQ(s.runs[3].config.learning_rate, 5e-4);
  EXPECT_EQ(s.runs[3].config.network_dim, 4);
  EXPECT_EQ(s.runs[1].values, (std::vector<std::pair<std::string, std::string>>{{"learning_rate", "0.001"},
                                                                                  {"network_dim", "4"}}));
  // The same effective config is the same run, whatever the file around it says.
  const sweep::Sweep again = sweep::load_sweep(sweep_file("plan", "# a comment\n" + kGrid));
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(again.runs[i].hash, s.runs[i].hash);

  // Variants are crossed with the grid; a one-value grid key is not in the labels.
  const sweep::Sweep v = sweep::load_sweep(sweep_file(
      "variants", "[grid]\nlearning_rate = [1e-3, 5e-4]\nnetwork_dim = [4]\n"
                  "[[variants]]\nname = \"adamw\"\n[[variants]]\nname = \"ada factor\"\noptimizer_type = \"Adafactor\"\n"
                  "optimizer_args = [\"relative_step=False\"]\nlr_scheduler = \"constant_with_warmup\"\n"));
  ASSERT_EQ(v.runs.size(), 4u);
  EXPECT_EQ(v.runs[0].label, "adamw_lr1e-3");
  EXPECT_EQ(v.runs[3].label, "ada-factor_lr5e-4");
  EXPECT_EQ(v.runs[3].config.optimizer_type, "Adafactor");
  EXPECT_EQ(v.varied_keys, (std::vector<std::string>{"learning_rate", "variant"}));
}

TEST_F(SweepTest, SheetTableIsReadBeforeAnythingTrains) {
  const sweep::Sweep s = sweep::load_sweep(sweep_file("sheet", kGridSmall + kSheetSmall));
  ASSERT_TRUE(s.sheet.present);
  EXPECT_EQ(s.sheet.prompts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.sheet.seeds, (std::vector<int64_t>{3}));  // from seed
  EXPECT_EQ(s.sheet.strengths, (std::vector<double>{1.0}));
  EXPECT_EQ(s.sheet.settings.request.steps, 3);
  EXPECT_EQ(s.sheet.settings.request.sampler, "Euler a");
  EXPECT_EQ(s.sheet.every_n_epochs, 2);
  EXPECT_EQ(s.sheet.given, (std::vector<std::string>{"sampler", "seed", "steps"}));
  EXPECT_EQ(sweep::facet_value("learning_rate", "0.0001"), "1e-4");
  EXPECT_EQ(sweep::facet_value("optimizer_args", "weight_decay=0.01 betas=0.9,0.99"), "weight_decay=0.01 betas=0.9,0.99");
  EXPECT_EQ(sweep::facet_value("dataset_config", "/data/dogs.toml"), "dogs");

  const std::string file = (*dir_ / "bad" / "sweep.toml").string();
  std::string e = error_of("[sheet]\nprompts = [\"a\"]\nsteeps = 3\n");
  EXPECT_NE(e.find(file + ":11: unknown [sheet] key 'steeps' (did you mean 'steps'?)"), std::string::npos) << e;
  e = error_of("[sheet]\nprompts = [\"a\"]\nsteps = \"many\"\n");
  EXPECT_NE(e.find(file + ":11: [sheet] steps"), std::string::npos) << e;
  e = error_of("[sheet]\nprompts = []\n");
  EXPECT_NE(e.find(file + ":10: [sheet] prompts must be a non-empty list"), std::string::npos) << e;
  e = error_of("[sheet]\nprompts = [\"a\"]\nseeds = [1, 1]\n");
  EXPECT_NE(e.find("seeds lists 1 twice"), std::string::npos) << e;
  e = error_of("[sheet]\nprompts = [\"a\"]\nsampler = \"Eulr\"\n");
  EXPECT_NE(e.find(file + ": [sheet]: "), std::string::npos) << e;
  EXPECT_NE(e.find("Eulr"), std::string::npos) << e;
  e = error_of("[sheet]\nseeds = [1]\n");
  EXPECT_NE(e.find("[sheet] has no prompts"), std::string::npos) << e;
  e = error_of("[sheet]\nprompts = [\"a\"]\nepochs = [2]\nlast_n_epochs = 1\n");
  EXPECT_NE(e.find("drop every_n_epochs / last_n_epochs, or epochs"), std::string::npos) << e;
  // Without [sheet], `sweep sheet` says what to add.
  const sweep::Sweep plain = sweep::load_sweep(sweep_file("nosheet", kGridSmall));
  e = test::error_of([&] { sweep::plan_sweep_sheet(plain); });
  EXPECT_NE(e.find("no [sheet] table"), std::string::npos) << e;
  // Nothing trained yet: says to train first.
  e = test::error_of([&] { sweep::plan_sweep_sheet(s); });
  EXPECT_NE(e.find("no run has a LoRA file to compare yet"), std::string::npos) << e;

  EXPECT_EQ(sweep::parse_device_list("cpu, cpu"), (std::vector<std::string>{"cpu", "cpu"}));
  e = test::error_of([] { sweep::parse_device_list("cpu,,cpu"); });
  EXPECT_NE(e.find("an empty device name"), std::string::npos) << e;
}

TEST_F(SweepTest, LabelValues) {
  EXPECT_EQ(sweep::label_value("learning_rate", "0.0001"), "1e-4");
  EXPECT_EQ(sweep::label_value("learning_rate", "5e-05"), "5e-5");
  EXPECT_EQ(sweep::label_value("learning_rate", "2.5e-05"), "2.5e-5");
  EXPECT_EQ(sweep::label_value("network_alpha", "0.5"), "0.5");
  EXPECT_EQ(sweep::label_value("noise_offset", "0.01"), "0.01");
  EXPECT_EQ(sweep::label_value("network_dim", "32"), "32");
  EXPECT_EQ(sweep::label_value("dataset_config", "/data/dogs v2.toml"), "dogs-v2");
  EXPECT_EQ(sweep::label_value("optimizer_args", "weight_decay=0.01 betas=0.9,0.99"), "weight_decay-0.01-betas-0.9-0.99");
  EXPECT_EQ(sweep::label_key("network_dim"), "dim");
  EXPECT_EQ(sweep::label_key("min_timestep"), "min_timestep");
}

TEST_F(SweepTest, BadFilesNameFileAndLine) {
  const std::string file = (*dir_ / "bad" / "sweep.toml").string();
  std::string e = error_of("[grid]\nlearning_rat = [1e-4]\n");
  EXPECT_NE(e.find(file + ":10: unknown training key 'learning_rat' (did you mean 'learning_rate'?)"), std::string::npos) << e;
  e = error_of("[grid]\nnetwork_dim = [4, \"eight\"]\n");
  EXPECT_NE(e.find(file + ":10: 'network_dim' must be an integer"), std::string::npos) << e;
  e = error_of("[grid]\nnetwork_dim = []\n");
  EXPECT_NE(e.find(file + ":10: grid key 'network_dim' has no values"), std::string::npos) << e;
  e = error_of("[grid]\nnetwork_dim = [4, 4]\n");
  EXPECT_NE(e.find("lists 4 twice"), std::string::npos) << e;
  e = error_of("[[variants]]\nname = \"a\"\n[[variants]]\nname = \"a\"\n");
  EXPECT_NE(e.find(file + ":12: variant name 'a' is used twice"), std::string::npos) << e;
  e = error_of("[[variants]]\noptimizer_type = \"Adafactor\"\n");
  EXPECT_NE(e.find("a variant needs a name"), std::string::npos) << e;
  e = error_of("grd = 1\n");  // lands in [base]: a training key after all
  EXPECT_NE(e.find(file + ":9: unknown training key 'grd'"), std::string::npos) << e;
  const std::string top = test::error_of([&] {
    core::write_file_atomic(file, "output_dir = \"x\"\nbase = \"t.toml\"\ngird = 1\n");
    sweep::load_sweep(file);
  });
  EXPECT_NE(top.find(file + ":3: unknown sweep key 'gird' (did you mean 'grid'?)"), std::string::npos) << top;
  e = error_of("[grid]\nlr_scheduler = [\"constant\", \"cosine_with_restart\"]\n");
  EXPECT_NE(e.find("run schedcosine_with_restart: "), std::string::npos) << e;  // validate() refuses it: named by run
  EXPECT_NE(e.find("cosine_with_restart"), std::string::npos) << e;
}

std::map<std::string, std::string> lora_files(const sweep::Sweep& s) {
  std::map<std::string, std::string> out;
  for (const auto& run : s.runs)
    for (const auto& e : fs::directory_iterator(run.folder))
      if (e.path().extension() == ".safetensors") out[run.label + "/" + e.path().filename().string()] = core::read_file(e.path());
  return out;
}

const std::string kSheet = "[sheet]\nprompts = [\"lsshape, a red circle\"]\nseeds = [1, 2]\nstrengths = [0.5, 1.0]\n"
                           "steps = 2\nwidth = 64\nheight = 64\n";

TEST_F(SweepTest, TrainsEveryRunOnceAndResumesWhereItStopped) {
  const sweep::Sweep full = sweep::load_sweep(sweep_file("full", kGrid + kSheet));
  sweep::SweepResult r = sweep::run_sweep(full, {});
  EXPECT_EQ(r.trained, 4);
  EXPECT_EQ(r.failed, 0);
  const auto files = lora_files(full);
  EXPECT_EQ(files.size(), 4u * 2u);  // tiny-000001 and the final tiny per run
  for (const auto& run : full.runs) {
    EXPECT_TRUE(fs::is_regular_file(fs::path(run.folder) / "tiny-000001.safetensors")) << run.label;
    EXPECT_TRUE(fs::is_regular_file(fs::path(run.folder) / "tiny.safetensors")) << run.label;
    EXPECT_EQ(sweep::read_run_record(run).state, sweep::RunState::kDone);
    EXPECT_EQ(sweep::run_status(run).epochs_done, 2);
  }
  // The runs trained what they say: other lr or rank, other bytes.
  EXPECT_NE(files.at("lr1e-3_dim2/tiny.safetensors"), files.at("lr5e-4_dim2/tiny.safetensors"));
  EXPECT_NE(files.at("lr1e-3_dim2/tiny.safetensors").size(), files.at("lr1e-3_dim4/tiny.safetensors").size());
  // One sheet: 4 runs x 2 epochs (y) x 2 strengths (x) x 2 seeds (z).
  sweep::SweepSheetResult shown = sweep::render_sweep_sheet(full, {false});
  EXPECT_EQ(shown.stats.cells, 4 * 2 * 2 * 2);
  EXPECT_EQ(shown.stats.rendered, 32);
  EXPECT_TRUE(shown.notes.empty());
  EXPECT_EQ(shown.folder, (fs::path(full.output_dir) / "sheet").string());
  const sheet::Sheet made = sheet::load_sheet(fs::path(shown.folder) / "sheet.json");
  ASSERT_EQ(made.axes.size(), 3u);
  const sheet::SheetAxis& runs = made.axes[1];
  EXPECT_EQ(runs.role, "y");
  EXPECT_EQ(runs.title, "run, epoch");
  EXPECT_EQ(runs.values, (std::vector<std::string>{"lr1e-3_dim2 e1", "lr1e-3_dim2 e2", "lr1e-3_dim4 e1", "lr1e-3_dim4 e2",
                                                   "lr5e-4_dim2 e1", "lr5e-4_dim2 e2", "lr5e-4_dim4 e1", "lr5e-4_dim4 e2"}));
  ASSERT_EQ(runs.facets.size(), 8u);
  EXPECT_EQ(runs.facets[5], (sheet::Facets{{"learning_rate", "5e-4"}, {"network_dim", "2"}}));
  EXPECT_EQ(made.axes[0].kind, "strength");
  EXPECT_EQ(made.axes[2].kind, "seed");
  EXPECT_EQ(made.cells.size(), 32u);
  std::set<int> epochs;
  for (const auto& c : made.cells) epochs.insert(c.epochs.begin(), c.epochs.end());
  EXPECT_EQ(epochs, (std::set<int>{1, 2}));  // the final file's epoch from its metadata
  ASSERT_EQ(made.figures.size(), 1u);
  EXPECT_TRUE(fs::is_regular_file(fs::path(shown.folder) / made.figures[0].image));
  EXPECT_TRUE(fs::is_regular_file(fs::path(shown.folder) / "grid-000.png"));

  r = sweep::run_sweep(full, {});  // again: nothing to train, nothing to render
  EXPECT_EQ(r.trained, 0);
  EXPECT_EQ(r.skipped, 4);
  EXPECT_EQ(lora_files(full), files);
  shown = sweep::render_sweep_sheet(full, {false});
  EXPECT_EQ(shown.stats.rendered, 0);
  EXPECT_EQ(shown.stats.reused, 32);

  // Only the last epoch: the same cells, fewer of them, nothing new to render.
  sweep::Sweep last = full;
  last.sheet.last_n_epochs = 1;
  const sweep::SweepSheetPlan plan = sweep::plan_sweep_sheet(last);
  EXPECT_EQ(plan.definition.axes[1].labels.front(), "lr1e-3_dim2 e2");
  EXPECT_EQ(plan.definition.axes[1].values.size(), 4u);

  // The dry run's plan: the steps the runs took, the LoRA file's size to within its training metadata.
  const train::TrainingPlan predicted = train::plan_training(full.runs[1].config);
  EXPECT_EQ(predicted.num_epochs, 2);
  EXPECT_EQ(predicted.max_steps, sweep::run_status(full.runs[1]).steps);
  const auto real = fs::file_size(fs::path(full.runs[1].folder) / "tiny.safetensors");
  EXPECT_NEAR(static_cast<double>(predicted.lora_file_bytes), static_cast<double>(real), 16384.0);
  const train::TrainingPlan smaller = train::plan_training(full.runs[0].config);
  EXPECT_LT(smaller.lora_parameters, predicted.lora_parameters);  // rank 2 against rank 4

  // Stopped after 3 steps of its third run, then started again.
  const sweep::Sweep stopped = sweep::load_sweep(sweep_file("stopped", kGrid));
  bool third = false;
  sweep::SweepOptions o;
  o.print = [&](const std::string& line) { third = third || line.rfind("run 3/4", 0) == 0; };
  o.train_hooks.stop_after_step = [&](int64_t step) { return third && step == 3; };
  r = sweep::run_sweep(stopped, o);
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.trained, 2);
  EXPECT_EQ(sweep::read_run_record(stopped.runs[2]).state, sweep::RunState::kPending);
  EXPECT_FALSE(sweep::newest_state(stopped.runs[2]).empty());
  std::vector<std::string> lines;
  o.train_hooks.stop_after_step = nullptr;
  o.print = [&](const std::string& line) { lines.push_back(line); };
  r = sweep::run_sweep(stopped, o);
  EXPECT_EQ(r.trained, 2);
  EXPECT_EQ(r.skipped, 2);  // no finished run trained twice
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_NE(lines[2].find("resuming from"), std::string::npos) << lines[2];
  for (const auto& [k, bytes] : lora_files(stopped)) {
    const auto it = files.find(k);
    ASSERT_NE(it, files.end()) << k;
    EXPECT_TRUE(it->second == bytes) << k << " differs from the uninterrupted sweep's";
  }
}

TEST_F(SweepTest, AFailedRunIsRecordedAndTheSweepGoesOn) {
  // A dataset that does not exist for one variant: that run fails, the other trains.
  const sweep::Sweep s = sweep::load_sweep(sweep_file(
      "failing", "[[variants]]\nname = \"ok\"\n[[variants]]\nname = \"missing\"\ndataset_config = \"nowhere.toml\"\n"));
  const sweep::SweepResult r = sweep::run_sweep(s, {});
  EXPECT_EQ(r.trained, 1);
  EXPECT_EQ(r.failed, 1);
  const sweep::RunRecord failed = sweep::read_run_record(s.runs[1]);
  EXPECT_EQ(failed.state, sweep::RunState::kFailed);
  EXPECT_NE(failed.error.find("nowhere.toml"), std::string::npos) << failed.error;
}

// run label -> how many times a worker started it, from the sweep's event log.
std::map<std::string, int> starts(const sweep::Sweep& s) {
  std::map<std::string, int> out;
  std::istringstream log(core::read_file(fs::path(s.output_dir) / "sweep-log.jsonl"));
  for (std::string line; std::getline(log, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["event"] == "run_start") ++out[j["run"].get<std::string>()];
  }
  return out;
}

bool exited_zero(int pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(SweepTest, TwoShardsShareTheRunsAndADeadWorkersRunIsTakenOver) {
  // Heartbeats every timeout/4; 60 s leaves a loaded machine room, 2 s makes the takeover quick.
  const auto argv = [](const std::string& file, const char* shard, const char* timeout = "60") {
    return std::vector<std::string>{test::kLorastudioExe, "sweep", file, "--shard", shard, "--heartbeat_timeout", timeout};
  };
  // Two workers started at once: every run trained exactly once.
  const std::string both = sweep_file("shards", kGrid);
  const std::string log = (*dir_ / "shards" / "workers.log").string();
  const int a = test::spawn(argv(both, "0/2"), log), b = test::spawn(argv(both, "1/2"), log);
  ASSERT_TRUE(exited_zero(a)) << core::read_file(log);
  ASSERT_TRUE(exited_zero(b)) << core::read_file(log);
  const sweep::Sweep shared = sweep::load_sweep(both);
  for (const auto& run : shared.runs) EXPECT_EQ(sweep::read_run_record(run).state, sweep::RunState::kDone) << run.label;
  for (const auto& [label, n] : starts(shared)) EXPECT_EQ(n, 1) << label;
  EXPECT_EQ(starts(shared).size(), 4u);

  // A worker killed in its first run: the other takes that run over once the heartbeat is stale,
  // and finishes the dead worker's share too.
  const std::string file = sweep_file("takeover", kGrid);
  const sweep::Sweep s = sweep::load_sweep(file);
  const fs::path first = s.runs[0].folder;
  const int dead = test::spawn(argv(file, "0/2", "2"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (!fs::exists(first / "tiny-log.jsonl") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(dead, SIGKILL);
  waitpid(dead, nullptr, 0);
  ASSERT_TRUE(fs::exists(first / "sweep-run.lock"));  // left behind by the dead worker
  const std::string survivor_log = (*dir_ / "takeover" / "survivor.log").string();
  ASSERT_TRUE(exited_zero(test::spawn(argv(file, "1/2", "2"), survivor_log))) << core::read_file(survivor_log);
  for (const auto& run : s.runs) EXPECT_EQ(sweep::read_run_record(run).state, sweep::RunState::kDone) << run.label;
  EXPECT_EQ(starts(s)[s.runs[0].label], 2);  // the dead worker's start and the takeover
  EXPECT_FALSE(fs::exists(first / "sweep-run.lock"));
  EXPECT_EQ(lora_files(s), lora_files(shared));  // the taken-over run ends with the same bytes
}

TEST_F(SweepTest, OneWorkerPerDeviceTrainsEachRunOnce) {
  // Two workers on the CPU (a GPU machine gives --devices cuda:0,cuda:1): each run trained once,
  // by one of two workers, each worker's progress in its own log; then the sheet of both runs.
  const std::string file = sweep_file("devices", kGridSmall + kSheet);
  const std::string log = (*dir_ / "devices" / "parent.log").string();
  ASSERT_TRUE(exited_zero(test::spawn({test::kLorastudioExe, "sweep", file, "--devices", "cpu,cpu"}, log)))
      << core::read_file(log);
  const sweep::Sweep s = sweep::load_sweep(file);
  for (const auto& run : s.runs) EXPECT_EQ(sweep::read_run_record(run).state, sweep::RunState::kDone) << run.label;
  const auto started = starts(s);
  EXPECT_EQ(started.size(), 2u);
  for (const auto& [label, n] : started) EXPECT_EQ(n, 1) << label;
  EXPECT_TRUE(fs::is_regular_file(fs::path(s.output_dir) / "worker-0.log"));
  EXPECT_TRUE(fs::is_regular_file(fs::path(s.output_dir) / "worker-1.log"));
  const std::string out = core::read_file(log);
  EXPECT_NE(out.find("worker 0 on cpu"), std::string::npos) << out;
  EXPECT_NE(out.find("[cpu] run "), std::string::npos) << out;
  EXPECT_NE(out.find("sheet " + s.output_dir + "/sheet: 16 cells, 16 rendered"), std::string::npos) << out;
  EXPECT_TRUE(fs::is_regular_file(fs::path(s.output_dir) / "sweep-loss.png"));
}

TEST_F(SweepTest, LocksAreHeldWhileTheirHeartbeatIsFresh) {
  const fs::path folder = *dir_ / "locks";
  fs::create_directories(folder);
  const fs::path file = folder / "sweep-run.lock";
  const auto foreign = [&](double age) {  // a worker on another machine, last heard of `age` s ago
    core::write_file_atomic(file, nlohmann::json{{"owner", "elsewhere:1:0"}, {"heartbeat", sweep::wall_seconds() - age}}.dump());
  };
  std::string holder;
  foreign(1);
  EXPECT_EQ(sweep::RunLock::try_take(folder.string(), 5, &holder), nullptr);
  EXPECT_EQ(holder, "elsewhere:1:0");
  foreign(10);
  {
    auto lock = sweep::RunLock::try_take(folder.string(), 5);
    ASSERT_NE(lock, nullptr);  // stale: taken over
    EXPECT_NE(core::read_file(file).find(lock->owner()), std::string::npos);
    EXPECT_EQ(sweep::RunLock::try_take(folder.string(), 5), nullptr);  // now held, by a live owner
  }
  EXPECT_FALSE(fs::exists(file));  // released
  {
    auto lock = sweep::RunLock::try_take(folder.string(), 0.4);  // beats every 0.1 s
    ASSERT_NE(lock, nullptr);
    const auto heartbeat = [&] { return nlohmann::json::parse(core::read_file(file))["heartbeat"].get<double>(); };
    const double first = heartbeat();
    // Renewed (polled, so a loaded machine only makes it slower), and so held by a live owner.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (heartbeat() == first && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GT(heartbeat(), first);
    EXPECT_EQ(sweep::RunLock::try_take(folder.string(), 60), nullptr);
  }
}

TEST_F(SweepTest, KilledInItsThirdRunAndStartedAgainEndsWithTheSameBytes) {
  const auto sweep_argv = [](const std::string& file) {
    return std::vector<std::string>{test::kLorastudioExe, "sweep", file};
  };
  const std::string reference = sweep_file("uninterrupted", kGrid);
  ASSERT_TRUE(exited_zero(test::spawn(sweep_argv(reference))));

  const std::string file = sweep_file("killed", kGrid);
  const sweep::Sweep s = sweep::load_sweep(file);
  const fs::path third = s.runs[2].folder;
  const int pid = test::spawn(sweep_argv(file));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (!fs::exists(third / "tiny-log.jsonl") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  EXPECT_EQ(sweep::read_run_record(s.runs[1]).state, sweep::RunState::kDone);
  EXPECT_NE(sweep::read_run_record(s.runs[2]).state, sweep::RunState::kDone);
  // Its lock names a process of this machine that is gone: taken at once, no heartbeat wait
  // (the default timeout is 120 s; the test would time out waiting for it).
  ASSERT_TRUE(fs::exists(third / "sweep-run.lock"));
  ASSERT_TRUE(exited_zero(test::spawn(sweep_argv(file))));
  const auto started = starts(s);
  EXPECT_EQ(started.at(s.runs[0].label), 1);  // no finished run trained twice
  EXPECT_EQ(started.at(s.runs[1].label), 1);
  EXPECT_EQ(started.at(s.runs[2].label), 2);
  EXPECT_EQ(started.at(s.runs[3].label), 1);
  EXPECT_EQ(lora_files(s), lora_files(sweep::load_sweep(reference)));
}

// crash-c777... ([sheet] strengths = [nan]) and crash-8b15... (seeds = [-1]) planned, and the sheet
// refused their cells only once every run had trained. A grid of more than 1000 runs took minutes to
// plan (and a product past 2^64 wrapped to no runs at all). All are refused when the file is read.
TEST(SweepFileChecks, SheetValuesAndTheRunCountFailWhenRead) {
  const std::string fixtures = std::string(test::kSourceDir) + "/tests/fixtures/fuzz/fuzz_sweep_toml/";
  const auto error = [](const std::string& text) {
    return test::error_of([&] { sweep::parse_sweep(text, "/s/sweep.toml"); });
  };
  std::string e = error(core::read_file(fixtures + "crash-c7773b205d804e2ed47844aa78375614b6a80886"));
  EXPECT_NE(e.find("/s/sweep.toml:7: [sheet] strengths must be finite numbers, got nan"), std::string::npos) << e;
  e = error(core::read_file(fixtures + "crash-8b1579a64d0ef802365b4363bd6a26a83ceb12ff"));
  EXPECT_NE(e.find("/s/sweep.toml:7: [sheet] seeds must be >= 0, got -1"), std::string::npos) << e;

  const auto grid = [](int a, int b) {
    std::string text = "output_dir = \"o\"\n[base]\npretrained_model_name_or_path = \"m\"\ntrain_data_dir = \"d\"\n[grid]\n";
    for (const auto& [key, n] : {std::pair<const char*, int>{"max_train_epochs", a}, {"network_dim", b}}) {
      text += std::string(key) + " = [1";
      for (int i = 2; i <= n; ++i) text += ", " + std::to_string(i);
      text += "]\n";
    }
    return text;
  };
  e = error(grid(31, 33));
  EXPECT_NE(e.find("/s/sweep.toml: the grid and variants make 1023 runs, more than the 1000"), std::string::npos) << e;
  EXPECT_EQ(sweep::parse_sweep(grid(10, 100), "/s/sweep.toml").runs.size(), 1000u);
}

}  // namespace
}  // namespace ls
