// kill -9 at any point of `lorastudio caption` and `caption retag`: runs over a folder of 24 images
// (captions on two thirds of them) SIGKILLed ten times each at random moments — half at a random
// time, half frozen inside a random one of the writes left (a caption, a backup, the
// probabilities) — and run again each time: after every kill each caption file holds its old text or the
// uninterrupted run's (absent only if it was), every changed file has its history record (so
// `caption undo` can take it back), and the last run ends with the uninterrupted run's captions,
// byte for byte, and no temp.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>

#include "caption/caption_history.h"
#include "core/atomic_file.h"
#include "data/synthetic.h"
#include "support/kill_nine.h"
#include "support/small_disk.h"
#include "support/support.h"

namespace caption_kill_nine_test {

namespace fs = std::filesystem;

constexpr int kCkKills = 10;

std::string ck_tagger_dir() { return (fs::path(ls::test::kSourceDir) / "tests/fixtures/tagger/vit").string(); }

// 24 small synthetic images with their captions; every third caption removed. Returns the folder.
fs::path ck_make_dataset(const fs::path& root) {
  ls::data::SyntheticOptions o;
  o.images = 24, o.min_side = 64, o.max_side = 96, o.seed = 11;
  const auto d = ls::data::make_synthetic_dataset(root.string(), o);
  for (size_t i = 0; i < d.items.size(); i += 3) fs::remove(d.items[i].caption_path);
  return d.train_dir;
}

// Every caption file: name -> bytes.
std::map<std::string, std::string> ck_captions(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".txt") out[e.path().filename().string()] = ls::core::read_file(e.path());
  return out;
}

// Random weights give probabilities around 0.5: thresholds that keep some tags and drop others.
std::vector<std::string> ck_caption_argv(const fs::path& dir) {
  return {ls::test::kLorastudioExe, "caption", dir.string(), "--model_dir", ck_tagger_dir(), "--general_threshold", "0.5",
          "--character_threshold", "0.5", "--existing", "overwrite", "--batch_size", "2", "--save-probs"};
}
std::vector<std::string> ck_retag_argv(const fs::path& dir) {
  return {ls::test::kLorastudioExe, "caption", "retag", dir.string(), "--general_threshold", "0.6",
          "--character_threshold", "0.6", "--use_rating_tags", "--existing", "overwrite"};
}

// Each caption holds its old text or the new one, and a changed one has its history record.
void expect_old_or_new(const fs::path& dir, const std::map<std::string, std::string>& old_texts,
                       const std::map<std::string, std::string>& new_texts, int attempt) {
  const auto now = ck_captions(dir);
  const auto history = ls::caption::read_history(dir);
  for (const auto& [name, expected] : new_texts) {
    const auto it = now.find(name);
    const auto old = old_texts.find(name);
    if (it == now.end()) {
      EXPECT_TRUE(old == old_texts.end()) << name << " vanished (attempt " << attempt << ")";
      continue;
    }
    const bool is_old = old != old_texts.end() && it->second == old->second;
    EXPECT_TRUE(is_old || it->second == expected)
        << name << " holds neither its old text nor the new one after attempt " << attempt << ": '" << it->second << "'";
    if (is_old) continue;
    bool recorded = false;
    for (const auto& c : history) recorded |= c.path == name && c.new_text == it->second;
    EXPECT_TRUE(recorded) << name << " changed without a history record (attempt " << attempt << ")";
  }
  for (const auto& [name, text] : now)
    EXPECT_TRUE(new_texts.count(name)) << name << ": a caption file no run writes (attempt " << attempt << ")";
}

// Puts the captions back to `texts` (the start of a chain of runs).
void ck_restore(const fs::path& dir, const std::map<std::string, std::string>& texts) {
  for (const auto& [name, bytes] : ck_captions(dir))
    if (!texts.count(name)) fs::remove(dir / name);
  for (const auto& [name, bytes] : texts) ls::core::write_file_atomic(dir / name, bytes);
}

// Runs `argv` over `dir` until kCkKills runs were killed, then once to its end. Every run goes over
// every image (--existing overwrite), so its time is the uninterrupted run's; only its writes
// shrink as captions hold their new text. A run that ends before its kill completes its chain,
// which must equal the uninterrupted run; the captions are then put back and a new chain starts.
void kill_and_rerun(const std::string& name, const std::vector<std::string>& argv, const fs::path& dir,
                    const ls::test::KillOutcome& straight, const std::map<std::string, std::string>& old_texts,
                    const std::map<std::string, std::string>& new_texts) {
  std::mt19937_64 rng(ls::test::random_test_seed(name));
  const ls::test::RunShape shape{0, straight.seconds, straight.writes_seen};
  const fs::path log = dir.parent_path() / (name + ".log");
  int kills = 0, in_writes = 0, chains = 1;
  for (int attempt = 1;; ++attempt) {
    ASSERT_LE(attempt, 3 * kCkKills) << "too many runs ended before their kill";
    int still_old = 0;
    const auto now = ck_captions(dir);
    for (const auto& [file, text] : new_texts) still_old += !now.count(file) || now.at(file) != text;
    const bool last = kills == kCkKills;
    const ls::test::KillAt at = last ? ls::test::KillAt{1e9, 0, dir}
                                     : ls::test::random_kill(rng, shape, 1.0, double(still_old) / new_texts.size(), dir);
    const ls::test::KillOutcome o = ls::test::run_and_kill(argv, at, log.string());
    std::printf("[kill9] %s %2d: %d captions to write, %s\n", name.c_str(), attempt, still_old, o.describe().c_str());
    expect_old_or_new(dir, old_texts, new_texts, attempt);
    if (::testing::Test::HasFailure()) return;
    if (o.killed) {
      ++kills;
      in_writes += !o.temp.empty();
      continue;
    }
    ASSERT_EQ(o.exit_code, 0) << "attempt " << attempt << ":\n" << ls::core::read_file(log);
    EXPECT_TRUE(ck_captions(dir) == new_texts) << "the captions differ from the uninterrupted run's";
    EXPECT_EQ(ls::test::temp_entries(dir), std::vector<std::string>{});
    if (last || ::testing::Test::HasFailure()) break;
    ck_restore(dir, old_texts);
    ++chains;
  }
  std::printf("[kill9] %s: %d kills, %d inside a write, %d chain(s) of runs\n", name.c_str(), kills, in_writes, chains);
}

TEST(CaptionKillNine, RandomKillsOfCaptionAndRetagLeaveOldOrNewTextThenEqualTheUninterruptedRuns) {
  ls::test::TempDir root;
  const fs::path ref = ck_make_dataset(root / "ref"), dir = ck_make_dataset(root / "killed");
  const auto old_texts = ck_captions(dir);
  ASSERT_EQ(old_texts, ck_captions(ref));
  ASSERT_EQ(old_texts.size(), 16u);

  // The uninterrupted runs: caption (with the probabilities), then retag on them.
  const auto caption = ls::test::run_and_kill(ck_caption_argv(ref), {1e9, 0, ref});
  ASSERT_FALSE(caption.killed);
  ASSERT_EQ(caption.exit_code, 0);
  const auto captioned = ck_captions(ref);
  ASSERT_EQ(captioned.size(), 24u);
  const auto retag = ls::test::run_and_kill(ck_retag_argv(ref), {1e9, 0, ref});
  ASSERT_EQ(retag.exit_code, 0);
  const auto retagged = ck_captions(ref);
  ASSERT_NE(retagged, captioned);
  std::printf("[kill9] caption: uninterrupted %.2f s, %d temp files; retag %.2f s, %d temp files\n", caption.seconds,
              caption.writes_seen, retag.seconds, retag.writes_seen);

  kill_and_rerun("caption", ck_caption_argv(dir), dir, caption, old_texts, captioned);
  if (HasFailure()) return;
  kill_and_rerun("retag", ck_retag_argv(dir), dir, retag, captioned, retagged);
}

}  // namespace caption_kill_nine_test
