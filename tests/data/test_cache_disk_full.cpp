// `lorastudio dataset cache` adding entries to a latent cache folder that is full or read-only
// (tests/support/small_disk): the failing entry is one error line naming its path, no temp stays,
// the entries already there keep their bytes, and the same command run again with room ends with
// the cache of an uninterrupted run, byte for byte.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "support/small_disk.h"
#include "support/support.h"
#include "support/training_data.h"

namespace cache_disk_full_test {

namespace fs = std::filesystem;
using ls::test::DiskFault;

// Six synthetic images, of which two are added after a first fill: the fault hits the first of
// their entries. Each entry's noise is its own (data::latent_noise), so the cache filled in two
// runs with a failed one between ends equal to one fill of all six from nothing.
class CacheDiskFull : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ls::test::TempDir();
    model_ = ls::test::write_tiny_checkpoint(dir_->path() / "tiny.safetensors", 5);
    const auto r = ls::test::run_lorastudio_unfaulted({"dataset", "make-synthetic", (dir_->path() / "ds").string(),
                                                       "--images", "6", "--min-side", "64", "--max-side", "128",
                                                       "--resolution", "128"});
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::vector<std::string> args(const fs::path& cache) {
    return {"dataset", "cache", (dir_->path() / "ds/dataset.toml").string(), "--model", model_, "--cache-dir",
            cache.string()};
  }
  static std::vector<fs::path> images() {
    std::vector<fs::path> out;
    for (const auto& e : fs::recursive_directory_iterator(dir_->path() / "ds/img"))
      if (e.path().extension() == ".png") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }
  // Moves the last two images (and captions) out of the dataset, or back.
  static void set_aside(bool aside) {
    const fs::path away = dir_->path() / "aside";
    fs::create_directories(away);
    const auto all = images();
    if (aside) {
      for (size_t i = all.size() - 2; i < all.size(); ++i)
        for (const char* ext : {".png", ".txt"}) {
          const fs::path p = fs::path(all[i]).replace_extension(ext);
          fs::rename(p, away / (all[i].parent_path().filename().string() + "__" + p.filename().string()));
        }
      return;
    }
    for (const auto& e : fs::directory_iterator(away)) {
      const std::string name = e.path().filename().string();
      const size_t sep = name.find("__");
      fs::rename(e.path(), dir_->path() / "ds/img" / name.substr(0, sep) / name.substr(sep + 2));
    }
  }
  static std::map<std::string, std::string> entries(const fs::path& cache) {
    return ls::test::folder_files(cache / "latents");
  }

  // A cache of four images, then the faulted fill with all six; one fill of all six beside it.
  void expect_refused_then_rerun_equal(DiskFault fault, const std::string& cause) {
    ls::test::TempDir root;
    const fs::path cache = root / "cache", ref = root / "ref";
    set_aside(true);
    auto r = ls::test::run_lorastudio_unfaulted(args(cache));
    set_aside(false);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    ASSERT_EQ(images().size(), 6u);
    ASSERT_EQ(entries(cache).size(), 4u);
    r = ls::test::run_lorastudio_unfaulted(args(ref));  // all six in one go
    ASSERT_EQ(r.exit_code, 0) << r.out;
    ASSERT_EQ(entries(ref).size(), 6u);
    const auto before = ls::test::folder_files(cache);

    r = ls::test::run_lorastudio_with_fault(cache, fault, args(cache));
    EXPECT_EQ(r.exit_code, 1) << r.out;
    const auto errors = ls::test::error_lines(r.out);
    ASSERT_EQ(errors.size(), 1u) << r.out;
    std::smatch m;
    const std::string line = errors[0];
    ASSERT_TRUE(std::regex_search(line, m, std::regex("^error: " + (cache / "latents/").string() +
                                                      "([0-9a-f]{64}\\.safetensors): cannot ")))
        << line;
    EXPECT_TRUE(entries(ref).count(m[1]) && !before.count("latents/" + m[1].str())) << "not a new entry: " << line;
    EXPECT_NE(line.find(cause), std::string::npos) << line;
    EXPECT_EQ(ls::test::folder_changes(before, ls::test::folder_files(cache)), std::vector<std::string>{});
    EXPECT_EQ(ls::test::leftover_temp_files(cache), std::vector<std::string>{});

    r = ls::test::run_lorastudio_unfaulted(args(cache));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("4 cached, 2 encoded"), std::string::npos) << r.out;
    EXPECT_EQ(ls::test::folder_changes(entries(ref), entries(cache)), std::vector<std::string>{});
  }

  static inline ls::test::TempDir* dir_ = nullptr;
  static inline std::string model_;
};

// No page left on the tmpfs; under RLIMIT_FSIZE no file may pass 64 bytes (an entry's header alone
// is longer).
TEST_F(CacheDiskFull, NewEntryOnAFullDiskFailsWholeThenRerunEqualsTheUninterruptedFill) {
  const std::string how = ls::test::disk_fault_mechanism(DiskFault::kFull);
  expect_refused_then_rerun_equal({DiskFault::kFull, how == "tmpfs" ? 0u : 64u}, ls::test::full_disk_error_text(how));
}

TEST_F(CacheDiskFull, NewEntryInAReadOnlyFolderFailsWholeThenRerunEqualsTheUninterruptedFill) {
  const std::string how = ls::test::disk_fault_mechanism(DiskFault::kReadOnly);
  if (how.empty()) GTEST_SKIP() << "running as root without user namespaces: no way to make a folder read-only";
  expect_refused_then_rerun_equal({DiskFault::kReadOnly, 0}, how == "tmpfs" ? "(Read-only file system)"
                                                                            : "(Permission denied)");
}

}  // namespace cache_disk_full_test
