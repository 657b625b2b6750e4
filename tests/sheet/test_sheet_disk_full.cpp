// `lorastudio sheet` adding a cell to a sheet folder that is full (tests/support/small_disk): the
// failing cell is one error line naming its path, no temp stays, the cells already there keep
// their bytes, and the same command run again with room ends with the files of an uninterrupted
// render, byte for byte.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/small_disk.h"
#include "support/support.h"
#include "support/training_data.h"

namespace sheet_disk_full_test {

namespace fs = std::filesystem;
using ls::test::DiskFault;

class SheetDiskFull : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ls::test::TempDir();
    model_ = ls::test::write_tiny_checkpoint(dir_->path() / "tiny.safetensors", 5);
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::vector<std::string> args(const fs::path& out, const std::string& seeds) {
    return {"sheet", "--model", model_, "--tokenizer", ls::test::kClipVocab, "--width", "128", "--height", "64", "-q",
            "--prompt", "a red cube", "--steps", "2", "--sampler", "Euler", "--x", "seed=" + seeds, "-o", out.string()};
  }
  static std::map<std::string, std::string> files_but_log(const fs::path& out) {
    auto files = ls::test::folder_files(out);
    files.erase("sheet-log.jsonl");  // holds times
    return files;
  }
  static uint64_t page_up(uint64_t n) { return (n + 4095) / 4096 * 4096; }

  static inline ls::test::TempDir* dir_ = nullptr;
  static inline std::string model_;
};

// A sheet of seeds 1 and 2 gets seed 3. Before the new cell the run appends a line to the log and
// rewrites sheet.json (the same two cells, the new axis): under a page each beyond their size.
TEST_F(SheetDiskFull, NewCellFailsWholeThenRerunFinishesIdentically) {
  ls::test::TempDir root;
  const fs::path ref = root / "ref", out = root / "sheet";
  auto r = ls::test::run_lorastudio_unfaulted(args(ref, "1,2,3"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = ls::test::run_lorastudio_unfaulted(args(out, "1,2"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto before = ls::test::folder_files(out);
  std::string new_cell;
  uint64_t smallest_cell = UINT64_MAX;
  for (const auto& [name, bytes] : files_but_log(ref)) {
    if (name.rfind("cells/", 0) != 0) continue;
    smallest_cell = std::min<uint64_t>(smallest_cell, bytes.size());
    if (!before.count(name)) new_cell = name;
  }
  ASSERT_FALSE(new_cell.empty());
  const uint64_t free = page_up(std::max(fs::file_size(out / "sheet.json"), fs::file_size(out / "sheet-log.jsonl"))) + 4096;
  // The old sheet.json's pages come free at its rename: the cell must not fit in all of `free`.
  ASSERT_GT(smallest_cell, free) << "the tiny model's cells are too small for this test's arithmetic";

  r = ls::test::run_lorastudio_with_fault(out, {DiskFault::kFull, free}, args(out, "1,2,3"));
  const std::string how = ls::test::disk_fault_mechanism(DiskFault::kFull);
  std::printf("[sheet] disk full by %s, %llu bytes free; the cells are >= %llu bytes\n", how.c_str(),
              static_cast<unsigned long long>(free), static_cast<unsigned long long>(smallest_cell));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  const auto errors = ls::test::error_lines(r.out);
  ASSERT_EQ(errors.size(), 1u) << r.out;
  EXPECT_NE(errors[0].find("error: " + (out / new_cell).string() + ": cannot write ("), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find(ls::test::full_disk_error_text(how)), std::string::npos) << errors[0];
  EXPECT_EQ(ls::test::leftover_temp_files(out), std::vector<std::string>{});
  // The two cells and the grid as they were; sheet.json lists the same two cells on the new axis.
  EXPECT_EQ(ls::test::folder_changes(before, ls::test::folder_files(out)),
            (std::vector<std::string>{"~sheet-log.jsonl", "~sheet.json"}));

  r = ls::test::run_lorastudio_unfaulted(args(out, "1,2,3"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("3 cells, 1 rendered, 2 reused"), std::string::npos) << r.out;
  EXPECT_EQ(ls::test::folder_changes(files_but_log(ref), files_but_log(out)), std::vector<std::string>{});
}

}  // namespace sheet_disk_full_test
