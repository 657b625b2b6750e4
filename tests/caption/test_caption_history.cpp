// Caption changes are backed up and recorded before they happen, and a run undoes byte for byte
// without overwriting files edited since.
#include <fstream>

#include <gtest/gtest.h>

#include "caption/caption_history.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "support/support.h"

namespace caption_history_test {

namespace fs = std::filesystem;
using ls::caption::CaptionWriter;

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}
std::string get(const fs::path& p) { return ls::core::read_file(p); }

TEST(CaptionHistory, WriteRecordsBackupAndHistoryThenUndoRestoresBytes) {
  ls::test::TempDir dir;
  const std::string odd = "tags, with\r\ntrailing spaces  \xE2\x9C\x93\n";  // any bytes survive
  put(dir / "a.txt", odd);
  put(dir / "sub/b.txt", "b old");
  CaptionWriter writer(dir.path(), "run1", "wd14 test");
  EXPECT_TRUE(writer.write(dir / "a.txt", "new a"));
  EXPECT_TRUE(writer.write(dir / "sub/b.txt", "new b"));
  EXPECT_TRUE(writer.write(dir / "c.txt", "created"));
  EXPECT_FALSE(writer.write(dir / "c.txt", "created"));  // same text: no change, no record
  EXPECT_EQ(writer.changed(), 3);
  EXPECT_EQ(get(dir / ".lorastudio/caption_backups/run1/a.txt"), odd);
  EXPECT_EQ(get(dir / ".lorastudio/caption_backups/run1/sub/b.txt"), "b old");
  auto history = ls::caption::read_history(dir.path());
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].path, "a.txt");
  EXPECT_EQ(history[1].path, "sub/b.txt");
  EXPECT_EQ(*history[0].old_text, odd);
  EXPECT_FALSE(history[2].old_text.has_value());
  EXPECT_EQ(history[2].source, "wd14 test");

  auto report = ls::caption::undo_run(dir.path(), "");
  EXPECT_EQ(report.run, "run1");
  EXPECT_EQ(report.restored, 2);
  EXPECT_EQ(report.removed, 1);
  EXPECT_TRUE(report.conflicts.empty());
  EXPECT_EQ(get(dir / "a.txt"), odd);
  EXPECT_EQ(get(dir / "sub/b.txt"), "b old");
  EXPECT_FALSE(fs::exists(dir / "c.txt"));
  // The undo is itself recorded, and the newest non-undo run is still run1: undoing again finds
  // every file already at its old text.
  auto again = ls::caption::undo_run(dir.path(), "");
  EXPECT_EQ(again.run, "run1");
  EXPECT_EQ(again.unchanged, 3);
  EXPECT_EQ(again.restored, 0);
}

TEST(CaptionHistory, UndoLeavesFilesEditedSinceTheRun) {
  ls::test::TempDir dir;
  put(dir / "a.txt", "mine");
  CaptionWriter writer(dir.path(), "run1", "wd14 test");
  writer.write(dir / "a.txt", "tagger");
  put(dir / "a.txt", "edited by hand");
  auto report = ls::caption::undo_run(dir.path(), "run1");
  ASSERT_EQ(report.conflicts.size(), 1u);
  EXPECT_NE(report.conflicts[0].find("a.txt: edited since run run1"), std::string::npos) << report.conflicts[0];
  EXPECT_EQ(get(dir / "a.txt"), "edited by hand");
}

TEST(CaptionHistory, UnknownRunAndEmptyHistoryAreErrors) {
  ls::test::TempDir dir;
  auto message = ls::test::error_of([&] { ls::caption::undo_run(dir.path(), ""); });
  EXPECT_NE(message.find("no caption history"), std::string::npos) << message;
  CaptionWriter(dir.path(), "run1", "x").write(dir / "a.txt", "t");
  message = ls::test::error_of([&] { ls::caption::undo_run(dir.path(), "run9"); });
  EXPECT_NE(message.find("no run 'run9'; recorded runs: run1"), std::string::npos) << message;
}

TEST(CaptionHistory, TornLastLineIsSkipped) {
  ls::test::TempDir dir;
  CaptionWriter(dir.path(), "run1", "x").write(dir / "a.txt", "t");
  std::ofstream(ls::caption::history_path(dir.path()), std::ios::app) << "{\"run\":\"run2\",\"pa";
  EXPECT_EQ(ls::caption::read_history(dir.path()).size(), 1u);
  // The next change ends the torn line first: its own line is whole.
  CaptionWriter(dir.path(), "run3", "x").write(dir / "a.txt", "u");
  const auto history = ls::caption::read_history(dir.path());
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[1].run, "run3");
}

// A change whose history line cannot be written leaves the caption, the history and the backup
// folders as they were: no backup file, no empty folder made for it.
TEST(CaptionHistory, AFailedChangeLeavesNoBackupFolders) {
  ls::test::TempDir dir;
  put(dir / "deep/sub/a.txt", "old");
  fs::create_directories(ls::caption::history_path(dir.path()));  // a folder where the file goes: open fails
  CaptionWriter writer(dir.path(), "run1", "x");
  EXPECT_THROW(writer.write(dir / "deep/sub/a.txt", "new"), ls::Error);
  EXPECT_EQ(get(dir / "deep/sub/a.txt"), "old");
  const fs::path backups = dir / ".lorastudio" / "caption_backups";
  EXPECT_TRUE(!fs::exists(backups) || fs::is_empty(backups));
  // A folder that already holds a backup of the run is kept.
  const fs::path history = ls::caption::history_path(dir.path());
  fs::remove(history);
  CaptionWriter second(dir.path(), "run2", "x");
  EXPECT_TRUE(second.write(dir / "deep/sub/a.txt", "new"));
  put(dir / "deep/sub/b.txt", "old b");
  fs::remove(history);
  fs::create_directories(history);
  EXPECT_THROW(second.write(dir / "deep/sub/b.txt", "new b"), ls::Error);
  EXPECT_EQ(get(backups / "run2" / "deep" / "sub" / "a.txt"), "old");
  EXPECT_FALSE(fs::exists(backups / "run2" / "deep" / "sub" / "b.txt"));
}

TEST(CaptionHistory, RunIdsDiffer) { EXPECT_NE(ls::caption::new_run_id(), ls::caption::new_run_id()); }

}  // namespace caption_history_test
