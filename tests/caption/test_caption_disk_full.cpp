// `lorastudio caption` over a dataset folder that is full or read-only (tests/support/small_disk):
// the first caption it would change is one error line naming that caption file and the cause,
// every file there keeps its bytes (no backup, history line or temp is left for a change that did
// not happen), and the same command run again with room ends with the captions of an
// uninterrupted run, byte for byte.
#include <gtest/gtest.h>

#include <filesystem>

#include "caption/caption_history.h"
#include "caption/caption_run.h"
#include "core/atomic_file.h"
#include "data/synthetic.h"
#include "support/small_disk.h"
#include "support/support.h"

namespace caption_disk_full_test {

namespace fs = std::filesystem;
using ls::test::DiskFault;

// Four synthetic images, all with captions but the last.
fs::path cdf_make_dataset(const fs::path& root) {
  ls::data::SyntheticOptions o;
  o.images = 4, o.min_side = 64, o.max_side = 80, o.seed = 3;
  const auto d = ls::data::make_synthetic_dataset(root.string(), o);
  fs::remove(d.items.back().caption_path);
  return d.train_dir;
}

std::vector<std::string> cdf_args(const fs::path& dir) {
  return {"caption", dir.string(), "--model_dir", (fs::path(ls::test::kSourceDir) / "tests/fixtures/tagger/vit").string(),
          "--general_threshold", "0.5", "--character_threshold", "0.5", "--existing", "overwrite"};
}

std::map<std::string, std::string> cdf_captions(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& [name, bytes] : ls::test::folder_files(dir))
    if (fs::path(name).extension() == ".txt" && name.find('/') == std::string::npos) out[name] = bytes;
  return out;
}

void expect_refused_then_rerun_equal(DiskFault fault, const std::string& cause) {
  ls::test::TempDir root;
  const fs::path ref = cdf_make_dataset(root / "ref"), dir = cdf_make_dataset(root / "full");
  auto r = ls::test::run_lorastudio_unfaulted(cdf_args(ref));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto before = ls::test::folder_files(dir);
  ASSERT_NE(cdf_captions(ref), cdf_captions(dir));
  // Every image gets a new caption: the first (by name) is the first write.
  const fs::path first = fs::path(ls::caption::caption_images(dir.string(), false).front()).replace_extension(".txt");

  r = ls::test::run_lorastudio_with_fault(dir, fault, cdf_args(dir));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  const auto errors = ls::test::error_lines(r.out);
  ASSERT_EQ(errors.size(), 1u) << r.out;
  EXPECT_EQ(errors[0].rfind("error: " + first.string() + ": ", 0), 0u) << errors[0];
  EXPECT_NE(errors[0].find(cause), std::string::npos) << errors[0];
  EXPECT_EQ(ls::test::folder_changes(before, ls::test::folder_files(dir)), std::vector<std::string>{});
  EXPECT_EQ(ls::test::leftover_temp_files(dir), std::vector<std::string>{});
  EXPECT_TRUE(ls::caption::read_history(dir).empty());

  r = ls::test::run_lorastudio_unfaulted(cdf_args(dir));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(cdf_captions(dir) == cdf_captions(ref)) << "the captions differ from the uninterrupted run's";
}

// No page left on the tmpfs; under RLIMIT_FSIZE no file may pass 16 bytes (a caption, its backup
// and its history line are all longer).
TEST(CaptionDiskFull, FirstCaptionOnAFullDiskFailsWholeThenRerunEqualsTheUninterruptedRun) {
  const std::string how = ls::test::disk_fault_mechanism(DiskFault::kFull);
  expect_refused_then_rerun_equal({DiskFault::kFull, how == "tmpfs" ? 0u : 16u}, ls::test::full_disk_error_text(how));
}

TEST(CaptionDiskFull, FirstCaptionInAReadOnlyFolderFailsWholeThenRerunEqualsTheUninterruptedRun) {
  const std::string how = ls::test::disk_fault_mechanism(DiskFault::kReadOnly);
  if (how.empty()) GTEST_SKIP() << "running as root without user namespaces: no way to make a folder read-only";
  expect_refused_then_rerun_equal({DiskFault::kReadOnly, 0}, how == "tmpfs" ? "(Read-only file system)"
                                                                            : "(Permission denied)");
}

}  // namespace caption_disk_full_test
