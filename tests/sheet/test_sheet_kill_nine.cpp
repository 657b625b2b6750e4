// kill -9 at any point of `lorastudio sheet`: a render of eight cells on the tiny model SIGKILLed
// ten times at random moments — half at a random time of what it has left, half frozen inside a
// random one of its file writes (a cell, sheet.json, the grid) — and run again each time: after every kill each cell
// PNG there is whole and the uninterrupted render's, byte for byte, sheet.json loads and lists only
// cells that are there, and the last run ends with the uninterrupted render's files and no temp.
// A cell cut short some other way is rendered again, never reused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "sheet/sheet_file.h"
#include "support/kill_nine.h"
#include "support/small_disk.h"
#include "support/support.h"
#include "support/training_data.h"

namespace sheet_kill_nine_test {

namespace fs = std::filesystem;

constexpr int kSkKills = 10;

class SheetKillNine : public ::testing::Test {
 protected:
  // The uninterrupted render, as every attempt runs it (spawn: one OpenMP thread, so the same bytes).
  static void SetUpTestSuite() {
    dir_ = new ls::test::TempDir();
    model_ = ls::test::write_tiny_checkpoint(dir_->path() / "tiny.safetensors", 5);
    const fs::path ref = dir_->path() / "ref";
    straight_ = ls::test::run_and_kill(argv(ref), {1e9, 0, ref});
    ASSERT_FALSE(straight_.killed);
    ASSERT_EQ(straight_.exit_code, 0);
    reference_ = ls::test::folder_files(ref);
    reference_.erase("sheet-log.jsonl");  // holds times
    std::printf("[kill9] sheet: uninterrupted %.2f s, %d temp files, %zu files\n", straight_.seconds,
                straight_.writes_seen, reference_.size());
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::vector<std::string> argv(const fs::path& out) {
    return {ls::test::kLorastudioExe, "sheet", "--model", model_, "--tokenizer", ls::test::kClipVocab, "--width", "64",
            "--height", "64", "-q", "--prompt", "a red cube", "--steps", "2", "--sampler", "Euler", "--x",
            "seed=1,2,3,4", "--y", "cfg=5,7", "-o", out.string()};
  }

  static std::map<std::string, std::string> cells_of(const std::map<std::string, std::string>& files) {
    std::map<std::string, std::string> cells;
    for (const auto& [name, bytes] : files)
      if (name.rfind("cells/", 0) == 0) cells[name] = bytes;
    return cells;
  }

  static inline ls::test::TempDir* dir_ = nullptr;
  static inline std::string model_;
  static inline ls::test::KillOutcome straight_;
  static inline std::map<std::string, std::string> reference_;
};

// What a kill may leave: cells each equal to the uninterrupted render's (temps beside them are
// removed by the next run), a sheet.json that loads and lists cells that are there.
void expect_whole_sheet(const fs::path& out, const std::map<std::string, std::string>& reference, int attempt) {
  for (const auto& [name, bytes] : ls::test::folder_files(out)) {
    if (name.rfind("cells/", 0) != 0 || ls::test::is_temp_name(name)) continue;
    const auto it = reference.find(name);
    if (it == reference.end()) {
      ADD_FAILURE() << name << ": not a cell of the uninterrupted render (attempt " << attempt << ")";
    } else {
      EXPECT_TRUE(bytes == it->second) << name << " differs from the uninterrupted render's (attempt " << attempt << ")";
    }
  }
  if (!fs::exists(out / "sheet.json")) return;  // killed before its first manifest
  try {
    for (const auto& cell : ls::sheet::load_sheet(out / "sheet.json").cells)
      EXPECT_TRUE(reference.count(cell.image) && fs::exists(out / cell.image))
          << "sheet.json lists " << cell.image << ", which is not there (attempt " << attempt << ")";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "sheet.json does not load after attempt " << attempt << ": " << e.what();
  }
}

// The end of a chain of runs: the uninterrupted render's files, every log line JSON, no temp.
void expect_like_uninterrupted(const fs::path& out, const std::map<std::string, std::string>& reference) {
  auto files = ls::test::folder_files(out);
  std::istringstream lines(files["sheet-log.jsonl"]);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded()) << line;
  }
  files.erase("sheet-log.jsonl");
  EXPECT_EQ(ls::test::folder_changes(reference, files), std::vector<std::string>{});
  EXPECT_EQ(ls::test::temp_entries(out), std::vector<std::string>{});
}

TEST_F(SheetKillNine, TenRandomKillsThenRerunsEqualTheUninterruptedRender) {
  const size_t cells = cells_of(reference_).size();
  ASSERT_EQ(cells, 8u);
  std::mt19937_64 rng(ls::test::random_test_seed("SheetKillNine"));
  // The startup: a run over the finished sheet, which reuses every cell (and writes the grid again).
  const auto idle = ls::test::run_and_kill(argv(dir_->path() / "ref"), {1e9, 0, {}});
  ASSERT_EQ(idle.exit_code, 0);
  const ls::test::RunShape shape{idle.seconds, std::max(straight_.seconds - idle.seconds, 0.1), straight_.writes_seen};
  ls::test::TempDir killed;
  const fs::path out = killed / "sheet", log = killed / "children.log";
  // Every kill lands inside what its run has left; a run that ends anyway completes its chain,
  // which must equal the uninterrupted render, and the next chain starts afresh.
  int kills = 0, in_writes = 0, chains = 1;
  for (int attempt = 1;; ++attempt) {
    ASSERT_LE(attempt, 3 * kSkKills) << "too many runs ended before their kill";
    size_t rendered = 0;
    for (const auto& [name, bytes] : cells_of(ls::test::folder_files(out))) rendered += !ls::test::is_temp_name(name);
    const double left = 1.0 - static_cast<double>(rendered) / cells;
    const bool last = kills == kSkKills;
    const ls::test::KillAt at = last ? ls::test::KillAt{1e9, 0, out} : ls::test::random_kill(rng, shape, left, left, out);
    const ls::test::KillOutcome o = ls::test::run_and_kill(argv(out), at, log.string());
    std::printf("[kill9] sheet %2d: %.0f%% left, %s\n", attempt, 100 * left, o.describe().c_str());
    expect_whole_sheet(out, reference_, attempt);
    if (HasFailure()) return;
    if (o.killed) {
      ++kills;
      in_writes += !o.temp.empty();
      continue;
    }
    ASSERT_EQ(o.exit_code, 0) << "attempt " << attempt << ":\n" << ls::core::read_file(log);
    expect_like_uninterrupted(out, reference_);
    if (last || HasFailure()) break;
    fs::remove_all(out);
    ++chains;
  }
  std::printf("[kill9] sheet: %d kills, %d inside a write, %d chain(s) of runs\n", kills, in_writes, chains);
}

// A cell PNG cut to half (a copy interrupted, an older writer) is rendered again, not reused.
TEST_F(SheetKillNine, ACutCellIsRenderedAgain) {
  ls::test::TempDir root;
  const fs::path out = root / "sheet";
  fs::copy(dir_->path() / "ref", out, fs::copy_options::recursive);
  const std::string cell = cells_of(reference_).begin()->first;
  const std::string& bytes = reference_.at(cell);
  ls::core::write_file_atomic(out / cell, bytes.substr(0, bytes.size() / 2));
  const std::vector<std::string> args = argv(out);
  const auto r = ls::test::run_lorastudio_unfaulted({args.begin() + 1, args.end()});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("8 cells, 1 rendered, 7 reused"), std::string::npos) << r.out;
  auto files = ls::test::folder_files(out);
  files.erase("sheet-log.jsonl");
  EXPECT_EQ(ls::test::folder_changes(reference_, files), std::vector<std::string>{});
}

}  // namespace sheet_kill_nine_test
