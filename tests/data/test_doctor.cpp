// `dataset check` on a dataset with one of every problem: each is reported, nothing crashes,
// and the summary numbers are right.
#include <gtest/gtest.h>

#include <map>

#include "core/error.h"
#include "data/dataset_builder.h"
#include "data/doctor.h"
#include "support/support.h"

namespace ls::data {
namespace {

namespace fs = std::filesystem;

std::map<std::string, std::vector<std::string>> by_code(const CheckReport& r) {
  std::map<std::string, std::vector<std::string>> m;
  for (const Finding& f : r.findings) m[f.code].push_back(fs::path(f.path).filename().string());
  return m;
}

// train/10_thing holds: good.png (captioned), dup.png (same bytes), near.jpg (good.png shrunk),
// blank.png (empty caption), small.png (upscaled), corrupt.png (truncated), zero.png (0 bytes),
// loop.png (symlink to itself), long.png (80-token caption); train/abc_x has no repeat count.
struct BrokenDataset {
  test::TempDir tmp;
  fs::path train = tmp / "train";
  BrokenDataset() {
    const fs::path d = train / "10_thing";
    test::add_image(d, "good.png", 512, 512, "thing, red", 1);
    fs::copy_file(d / "good.png", d / "dup.png");
    io::write_image((d / "near.jpg").string(), io::resize_image(test::pattern_image(512, 512, 1), 400, 400));
    test::add_image(d, "blank.png", 512, 512, "", 50);
    test::add_image(d, "small.png", 200, 200, "thing, small", 60);
    test::add_image(d, "big.png", 700, 700, "thing, big", 70);
    const std::vector<uint8_t> png = io::encode_image(".png", test::pattern_image(512, 512, 80));
    test::write_text(d / "corrupt.png", std::string(png.begin(), png.begin() + static_cast<long>(png.size() / 2)));
    test::write_text(d / "zero.png", "");
    fs::create_symlink("loop.png", d / "loop.png");
    std::string long_caption = "thing";
    for (int i = 0; i < 79; ++i) long_caption += ", cat";
    test::add_image(d, "long.png", 512, 512, long_caption.c_str(), 90);
    test::add_image(train / "abc_x", "ignored.png", 512, 512, "x", 3);
  }
};

TEST(DatasetCheck, FindsEveryProblemWithoutCrashing) {
  BrokenDataset b;
  FolderSource src;
  src.train_dir = b.train.string();
  src.defaults.buckets.resolution = {512, 512};
  src.defaults.batch_size = 2;
  Findings findings;
  const DataConfig config = folder_dataset(src, findings);
  CheckOptions options;
  options.tokenizer = test::kClipVocab;
  options.show_progress = false;
  const CheckReport r = check_dataset(config, findings, options);
  auto codes = by_code(r);
  EXPECT_FALSE(r.ok());
  // corrupt.png: a truncated PNG fails either at the header scan or at the full decode.
  std::vector<std::string> broken = codes["unreadable_image"];
  broken.insert(broken.end(), codes["corrupt_image"].begin(), codes["corrupt_image"].end());
  EXPECT_EQ(broken, std::vector<std::string>{"corrupt.png"});
  EXPECT_EQ(codes["empty_file"], std::vector<std::string>{"zero.png"});
  EXPECT_EQ(codes["unreadable_file"], std::vector<std::string>{"loop.png"});
  EXPECT_EQ(codes["empty_caption"], std::vector<std::string>{"blank.txt"});
  EXPECT_EQ(codes["bad_repeats_folder"], std::vector<std::string>{"abc_x"});
  EXPECT_EQ(codes["duplicate_image"].size(), 1u);
  EXPECT_EQ(codes["near_duplicate"], std::vector<std::string>{"near.jpg"});  // dup.png counts once (exact twin)
  EXPECT_EQ(codes["upscaled"], (std::vector<std::string>{"near.jpg", "small.png"}));  // 400 and 200 < 512
  EXPECT_EQ(codes["caption_over_75_tokens"], std::vector<std::string>{"long.png"});
  EXPECT_EQ(codes["missing_caption"], (std::vector<std::string>{"dup.png", "near.jpg"}));
  EXPECT_EQ(r.findings.front().severity, Severity::kError);  // errors listed first

  // Usable: good, dup, near, blank, small, big, long = 7 images x 10 repeats; all one 512x512 bucket.
  ASSERT_EQ(r.datasets.size(), 1u);
  const DatasetReport& d = r.datasets[0];
  ASSERT_EQ(d.subsets.size(), 1u);
  EXPECT_EQ(d.subsets[0].images, 7);
  EXPECT_EQ(d.subsets[0].images_per_epoch, 70);
  EXPECT_EQ(d.subsets[0].captions_from_files, 4);  // good, small, big, long
  ASSERT_EQ(d.buckets.size(), 1u);
  EXPECT_EQ(d.buckets[0].reso, (Reso{512, 512}));
  EXPECT_EQ(d.buckets[0].images_per_epoch, 70);
  EXPECT_EQ(d.steps_per_epoch, 35);
  EXPECT_EQ(r.steps_per_epoch, 35);

  const nlohmann::json j = report_json(r);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_EQ(j["steps_per_epoch"].get<int64_t>(), 35);
  EXPECT_EQ(j["errors"].get<size_t>(), 3u);  // corrupt, zero, loop
  EXPECT_NE(report_text(r).find("fix the errors before training"), std::string::npos);
}

TEST(DatasetCheck, CleanDatasetIsOkAndBatchSizeOverrideChangesSteps) {
  test::TempDir tmp;
  for (int i = 0; i < 3; ++i) test::add_image(tmp / "train/4_obj", str_cat(i, ".png"), 512, 512, "obj", i * 40);
  FolderSource src;
  src.train_dir = (tmp / "train").string();
  src.defaults.buckets.resolution = {512, 512};
  Findings findings;
  const DataConfig config = folder_dataset(src, findings);
  CheckOptions options;
  options.show_progress = false;
  options.batch_size = 5;
  const CheckReport r = check_dataset(config, findings, options);
  EXPECT_TRUE(r.ok()) << report_text(r);
  EXPECT_EQ(r.steps_per_epoch, 3);  // 12 images per epoch / 5 -> 3 steps
  EXPECT_EQ(count_findings(r.findings, Severity::kWarning), 0u) << report_text(r);
}

}  // namespace
}  // namespace ls::data
