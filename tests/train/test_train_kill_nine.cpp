// kill -9 at any point of `lorastudio train`: a run SIGKILLed 20 times at random moments — half at
// a random time of what it has left, half frozen inside a random one of its file or state writes —
// and resumed each time from the newest state there, ends with the uninterrupted run's files byte
// for byte; every state left by a kill loads, every LoRA file left is whole, no temp stays behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include "core/atomic_file.h"
#include "io/safetensors.h"
#include "support/kill_nine.h"
#include "support/tiny_training.h"
#include "train/train_log.h"
#include "train/train_state.h"

namespace fs = std::filesystem;

namespace ls {
namespace {

constexpr int kKills = 20;

// 12 steps (two epochs of 6) on the tiny model, a LoRA and a state after every step and epoch:
// about 60 file writes and 15 state folders in a few seconds, so kills land in writes often.
std::vector<std::string> kill_train_argv(const test::TinyTraining& tiny, const fs::path& out) {
  return {test::kLorastudioExe, "train", "--pretrained_model_name_or_path", tiny.checkpoint,
          "--dataset_config", tiny.dataset_toml, "--tokenizer", test::kClipVocab, "--output_dir", out.string(),
          "--output_name", "tiny", "--network_dim", "4", "--network_alpha", "2", "--learning_rate", "1e-3",
          "--seed", "5", "--max_train_steps", "12", "--save_every_n_steps", "1", "--save_every_n_epochs", "1",
          "--save_state"};
}

bool is_state_folder(const fs::directory_entry& e) {
  const std::string name = e.path().filename().string();
  return e.is_directory() && name.size() > 6 && name.compare(name.size() - 6, 6, "-state") == 0;
}

// A state folder a resume could be given: state.json, the weights and the optimizer archive all
// read back whole. torch compresses the archive's code entries (so io::ZipArchive, which reads
// only stored entries, cannot open it): torch's own reader reads every record, which fails on a
// cut archive (its directory is at the end), and the optimizer archive loads.
::testing::AssertionResult state_loads(const fs::path& dir) {
  try {
    train::read_train_state_info(dir.string());
    io::SafetensorsReader weights(dir / "lora.safetensors");
    for (const io::TensorInfo& t : weights.tensors()) weights.load(t.name);
    caffe2::serialize::PyTorchStreamReader zip((dir / "optimizer.pt").string());
    for (const std::string& name : zip.getAllRecords()) zip.getRecord(name);
    torch::serialize::InputArchive archive;
    archive.load_from((dir / "optimizer.pt").string());
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << dir << " does not load: " << e.what();
  }
  return ::testing::AssertionSuccess();
}

// The newest state by its step ("" when there is none yet): what a user or `sweep` resumes from.
fs::path newest_state(const fs::path& out) {
  fs::path best;
  int64_t best_step = -1;
  for (const auto& e : fs::directory_iterator(out)) {
    if (!is_state_folder(e)) continue;
    const int64_t step = train::read_train_state_info(e.path().string()).position.global_step;
    if (step > best_step) best_step = step, best = e.path();
  }
  return best;
}

std::map<std::string, std::string> lora_files(const fs::path& out) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(out))
    if (e.is_regular_file() && e.path().extension() == ".safetensors")
      files[e.path().filename().string()] = core::read_file(e.path());
  return files;
}

// What a kill may leave: states that all load, LoRA files each equal to the uninterrupted run's.
void expect_whole_outputs(const fs::path& out, const std::map<std::string, std::string>& reference, int attempt) {
  for (const auto& e : fs::directory_iterator(out)) {
    if (!is_state_folder(e)) continue;
    EXPECT_TRUE(state_loads(e.path())) << "after attempt " << attempt;
  }
  for (const auto& [name, bytes] : lora_files(out)) {
    const auto it = reference.find(name);
    if (it == reference.end()) {
      ADD_FAILURE() << name << ": not a file of the uninterrupted run (after attempt " << attempt << ")";
    } else {
      EXPECT_TRUE(bytes == it->second) << name << " differs from the uninterrupted run's after attempt " << attempt
                                       << " (" << bytes.size() << " vs " << it->second.size() << " bytes)";
    }
  }
}

// The tensors an optimizer archive holds, sorted: torch orders an optimizer's state by tensor
// address, so two runs holding equal moments write them in other orders.
std::vector<std::string> optimizer_tensors(const fs::path& file) {
  caffe2::serialize::PyTorchStreamReader zip(file.string());
  std::vector<std::string> blobs;
  for (const std::string& name : zip.getAllRecords()) {
    if (name.rfind("data/", 0) != 0) continue;
    const auto [data, size] = zip.getRecord(name);
    blobs.emplace_back(static_cast<const char*>(data.get()), size);
  }
  std::sort(blobs.begin(), blobs.end());
  return blobs;
}

std::string tail_of(const fs::path& log) {
  std::string text = core::read_file(log);
  return text.size() > 3000 ? text.substr(text.size() - 3000) : text;
}

// The end of a chain of runs: every file of the uninterrupted run, byte for byte, and nothing
// half-made beside it.
void expect_like_uninterrupted(const fs::path& out, const fs::path& full,
                               const std::map<std::string, std::string>& reference) {
  EXPECT_EQ(lora_files(out).size(), reference.size());
  EXPECT_TRUE(lora_files(out) == reference) << "the LoRA files differ from the uninterrupted run's";
  const std::vector<std::string> temps = test::temp_entries(out);
  EXPECT_TRUE(temps.empty()) << temps.size() << " temp entries left, e.g. " << (temps.empty() ? "" : temps.front());
  ASSERT_TRUE(state_loads(out / "tiny-state"));
  EXPECT_TRUE(core::read_file(out / "tiny-state/lora.safetensors") ==
              core::read_file(full / "tiny-state/lora.safetensors"));
  EXPECT_TRUE(optimizer_tensors(out / "tiny-state/optimizer.pt") == optimizer_tensors(full / "tiny-state/optimizer.pt"))
      << "the final optimizer state differs";
  const train::TrainStateInfo a = train::read_train_state_info((out / "tiny-state").string());
  const train::TrainStateInfo b = train::read_train_state_info((full / "tiny-state").string());
  EXPECT_EQ(a.position.global_step, b.position.global_step);
  EXPECT_EQ(a.position.epoch, b.position.epoch);
  EXPECT_EQ(a.epoch_loss_sum, b.epoch_loss_sum);
  // The log reads as one run: the same steps with the same losses and learning rates.
  const auto steps = train::read_step_records((out / "tiny-log.jsonl").string());
  const auto expected = train::read_step_records((full / "tiny-log.jsonl").string());
  ASSERT_EQ(steps.size(), expected.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].step, expected[i].step);
    EXPECT_EQ(steps[i].loss, expected[i].loss) << "step " << expected[i].step;
    EXPECT_EQ(steps[i].lrs, expected[i].lrs) << "step " << expected[i].step;
  }
}

TEST(TrainKillNine, TwentyRandomKillsThenResumesEqualTheUninterruptedRun) {
  constexpr int64_t kSteps = 12;
  const uint64_t seed = test::random_test_seed("TrainKillNine");
  std::mt19937_64 rng(seed);
  test::TinyTraining tiny;
  test::TempDir full, killed;

  const test::KillOutcome straight = test::run_and_kill(kill_train_argv(tiny, full.path()), {1e9, 0, full.path()});
  ASSERT_FALSE(straight.killed);
  ASSERT_EQ(straight.exit_code, 0);
  ASSERT_GT(straight.writes_seen, 0);
  const auto reference = lora_files(full.path());
  ASSERT_EQ(reference.count("tiny.safetensors"), 1u);
  // The startup: a resume of the finished run, which has nothing left to train.
  const fs::path done = killed / "done";
  fs::copy(full.path(), done, fs::copy_options::recursive);
  std::vector<std::string> noop = kill_train_argv(tiny, done);
  noop.insert(noop.end(), {"--resume", (done / "tiny-state").string()});
  const test::KillOutcome idle = test::run_and_kill(noop, {1e9, 0, {}});
  ASSERT_EQ(idle.exit_code, 0);
  const test::RunShape shape{idle.seconds, std::max(straight.seconds - idle.seconds, 0.1), straight.writes_seen};
  std::printf("[kill9] train: uninterrupted %.2f s (%.2f s of it before the first step), %d temp files and folders, "
              "%zu LoRA files\n", straight.seconds, idle.seconds, straight.writes_seen, reference.size());

  // Every kill lands inside what its run has left; a run that ends (before its kill, or with the
  // training done) completes its chain of resumes, which must then equal the uninterrupted run,
  // and the next chain starts afresh.
  const fs::path log = killed / "children.log";
  const fs::path out = killed / "out";
  int kills = 0, in_writes = 0, chains = 1;
  for (int attempt = 1;; ++attempt) {
    ASSERT_LE(attempt, 3 * kKills) << "too many runs ended before their kill";
    std::vector<std::string> argv = kill_train_argv(tiny, out);
    const fs::path from = fs::exists(out) ? newest_state(out) : fs::path();
    if (!from.empty()) argv.insert(argv.end(), {"--resume", from.string()});
    const int64_t step = from.empty() ? 0 : train::read_train_state_info(from.string()).position.global_step;
    const double left = static_cast<double>(kSteps - step) / kSteps;
    // A chain whose training is done runs to its end: kills are spent on the training, not on the
    // same first write of runs with nothing left to do.
    const bool last = kills == kKills || step == kSteps;
    const test::KillAt at = last ? test::KillAt{1e9, 0, out} : test::random_kill(rng, shape, left, left, out);
    const test::KillOutcome o = test::run_and_kill(argv, at, log.string());
    std::printf("[kill9] train %2d: from %s, %s -> %s\n", attempt, from.empty() ? "the start" : from.filename().c_str(),
                at.nth_write ? ("write " + std::to_string(at.nth_write)).c_str()
                             : (at.seconds < 1e9 ? "time " + std::to_string(at.seconds).substr(0, 4) + " s" : "no kill").c_str(),
                o.describe().c_str());
    expect_whole_outputs(out, reference, attempt);
    if (HasFailure()) return;
    if (o.killed) {
      ++kills;
      in_writes += !o.temp.empty();
      continue;
    }
    ASSERT_EQ(o.exit_code, 0) << "attempt " << attempt << " failed:\n" << tail_of(log);
    if (kills == kKills) break;
    expect_like_uninterrupted(out, full.path(), reference);
    if (HasFailure()) return;
    fs::remove_all(out);
    ++chains;
  }
  std::printf("[kill9] train: %d kills, %d inside a write, %d chain(s) of resumes\n", kills, in_writes, chains);
  expect_like_uninterrupted(out, full.path(), reference);
}

}  // namespace
}  // namespace ls
