// Dataset index, kohya's regularization balancing, the epoch plan and batch loading, against
// hand-computed expectations (arithmetic in the comments).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/dataset_builder.h"
#include "support/support.h"

namespace ls::data {
namespace {

namespace fs = std::filesystem;

DatasetConfig config_with(std::vector<SubsetConfig> subsets, int resolution = 512, int batch = 1) {
  DatasetConfig d;
  d.buckets.resolution = {resolution, resolution};
  d.batch_size = batch;
  d.subsets = std::move(subsets);
  return d;
}

SubsetConfig subset(const fs::path& dir, int repeats, bool is_reg = false, const std::string& class_tokens = "") {
  SubsetConfig s;
  s.image_dir = dir.string();
  s.num_repeats = repeats;
  s.is_reg = is_reg;
  s.class_tokens = class_tokens;
  return s;
}

// One 400x600 (or w x h) image "tall.png" in one subset at resolution 512; `tweak` sets flags.
std::vector<DatasetIndex> single_image(const test::TempDir& tmp, int w, int h, void (*tweak)(SubsetConfig&)) {
  test::add_image(tmp / "a", "tall.png", w, h, "tall");
  SubsetConfig s = subset(tmp / "a", 1);
  tweak(s);
  Findings findings;
  return {index_dataset(config_with({s}), findings)};
}

TEST(DatasetIndex, CaptionsSizesBucketsAndHashes) {
  test::TempDir tmp;
  test::add_image(tmp / "a", "1.png", 600, 400, "red, circle");
  test::add_image(tmp / "a", "2.jpg", 400, 600);  // no caption: class tokens
  test::add_image(tmp / "a", "3.webp", 512, 512, "\n");  // empty caption: class tokens, warned
  test::write_text(tmp / "a/notes.md", "not an image");
  Findings findings;
  const DatasetIndex idx = index_dataset(config_with({subset(tmp / "a", 3, false, "sks")}), findings);
  ASSERT_EQ(idx.images.size(), 3u);
  EXPECT_EQ(fs::path(idx.images[0].path).filename(), "1.png");
  EXPECT_EQ(idx.images[0].caption, "red, circle");
  EXPECT_TRUE(idx.images[0].caption_file);
  EXPECT_EQ(idx.images[1].caption, "sks");
  EXPECT_FALSE(idx.images[1].caption_file);
  EXPECT_EQ(idx.images[2].caption, "sks");
  EXPECT_EQ(idx.images[0].size.width, 600);
  EXPECT_EQ(idx.images[0].size.height, 400);
  EXPECT_EQ(idx.images[1].size.width, 400);
  EXPECT_EQ(idx.images[0].content_hash.size(), 64u);
  EXPECT_NE(idx.images[0].content_hash, idx.images[1].content_hash);
  EXPECT_EQ(idx.train_images_with_repeats, 9);
  // Resolution 512: max area 262144. 600x400 (ar 1.5): candidates (640,384) ar 1.667 (|err| .167) and
  // (576,448) ar 1.286 (|err| .214) -> (640,384); 1.5 < 1.667 so scale = 640/600 -> (640, int(426.67+.5) = 427).
  EXPECT_EQ(idx.images[0].bucket.bucket, (Reso{640, 384}));
  EXPECT_EQ(idx.images[0].bucket.resized, (Reso{640, 427}));
  // 400x600 mirrors it: bucket (384,640), scale 640/600 -> (427, 640).
  EXPECT_EQ(idx.images[1].bucket.bucket, (Reso{384, 640}));
  EXPECT_EQ(idx.images[1].bucket.resized, (Reso{427, 640}));
  EXPECT_EQ(idx.images[2].bucket.bucket, (Reso{512, 512}));
  std::map<std::string, int> codes;
  for (const Finding& f : findings) ++codes[f.code];
  EXPECT_EQ(codes["missing_caption"], 1);
  EXPECT_EQ(codes["empty_caption"], 1);
  EXPECT_EQ(count_findings(findings, Severity::kError), 0u);
}

// A train subset and a reg subset of 64x64 images; returns the reg images' repeats after
// balancing (in file order) and the index.
std::vector<int> balanced_reg_repeats(const test::TempDir& tmp, int train, int train_repeats, int reg, int reg_repeats,
                                      DatasetIndex* index = nullptr) {
  for (int i = 0; i < train; ++i) test::add_image(tmp / "train", str_cat(i, ".png"), 64, 64, "t", i + 1);
  for (int i = 0; i < reg; ++i) test::add_image(tmp / "reg", str_cat(100 + i, ".png"), 64, 64, "r", 100 + i);
  Findings findings;
  const DatasetIndex idx = index_dataset(
      config_with({subset(tmp / "train", train_repeats), subset(tmp / "reg", reg_repeats, true)}), findings);
  std::vector<int> repeats;
  for (const ImageRecord& r : idx.images)
    if (r.is_reg) repeats.push_back(r.num_repeats);
  if (index) *index = idx;
  return repeats;
}

// kohya: 4 train images x 5 repeats = 20; 6 reg images x 1: pass 1 registers all six (n = 6),
// passes 2 and 3 add one each (n = 12, 18), pass 4 adds to images 0 and 1 (n = 20) and stops.
TEST(RegBalance, RepeatsGrowUntilTheTrainCountIsCovered) {
  test::TempDir tmp;
  DatasetIndex idx;
  EXPECT_EQ(balanced_reg_repeats(tmp, 4, 5, 6, 1, &idx), (std::vector<int>{4, 4, 3, 3, 3, 3}));
  EXPECT_EQ(idx.reg_images_with_repeats, 6);
}

// 3 train x 10 = 30 against 50 reg images: only the first 30 are registered, once each.
TEST(RegBalance, SurplusRegImagesAreLeftOut) {
  test::TempDir tmp;
  DatasetIndex idx;
  int used = 0, unused = 0;
  for (int repeats : balanced_reg_repeats(tmp, 3, 10, 50, 1, &idx)) {
    (repeats == 1 ? used : unused) += 1;
    EXPECT_LE(repeats, 1);
  }
  EXPECT_EQ(used, 30);
  EXPECT_EQ(unused, 20);
  EXPECT_EQ(idx.reg_images_with_repeats, 50);
}

// Reg repeats 3 against 10 train images: 3, 6, 9, 12 -> all four registered with 3 (12, kohya overshoots).
TEST(RegBalance, FirstPassKeepsTheSubsetRepeats) {
  test::TempDir tmp;
  int64_t reg_total = 0;
  for (int repeats : balanced_reg_repeats(tmp, 10, 1, 4, 3)) {
    EXPECT_EQ(repeats, 3);
    reg_total += repeats;
  }
  EXPECT_EQ(reg_total, 12);
}

// Bucket A (640x384): 3 images x 10 = 30, batch 4 -> 8 batches (seven of 4, one of 2);
// bucket B (512x512): 2 images x 10 = 20 -> 5 batches of 4. 13 steps.
// Three 640x384 and two 512x512 images, 10 repeats, batch 4.
std::vector<DatasetIndex> two_bucket_dataset(const test::TempDir& tmp) {
  for (int i = 0; i < 3; ++i) test::add_image(tmp / "a", str_cat("w", i, ".png"), 600, 400, "w", i);
  for (int i = 0; i < 2; ++i) test::add_image(tmp / "a", str_cat("s", i, ".png"), 256, 256, "s", i);
  Findings findings;
  return {index_dataset(config_with({subset(tmp / "a", 10)}, 512, 4), findings)};
}

TEST(EpochPlan, SameBucketBatchesAllRepeatsSeededOrder) {
  test::TempDir tmp;
  const std::vector<DatasetIndex> ds = two_bucket_dataset(tmp);
  EXPECT_EQ(steps_per_epoch(ds), 13);
  EXPECT_EQ(steps_per_epoch(ds[0], 1), 50);
  const auto plan = epoch_plan(ds, 42, 0);
  ASSERT_EQ(plan.size(), 13u);
  std::map<int, int> seen;
  std::map<int, int> sizes;
  for (const BatchPlan& b : plan) {
    ++sizes[static_cast<int>(b.images.size())];
    for (int i : b.images) {
      ++seen[i];
      EXPECT_EQ(ds[0].images[static_cast<size_t>(i)].bucket.bucket, b.bucket);
    }
  }
  for (const auto& [i, n] : seen) EXPECT_EQ(n, 10) << i;
  EXPECT_EQ(sizes[4], 12);
  EXPECT_EQ(sizes[2], 1);
  auto flat = [](const std::vector<BatchPlan>& p) {
    std::vector<int> v;
    for (const auto& b : p) v.insert(v.end(), b.images.begin(), b.images.end());
    return v;
  };
  EXPECT_EQ(flat(epoch_plan(ds, 42, 0)), flat(plan));
  EXPECT_NE(flat(epoch_plan(ds, 42, 1)), flat(plan));
  EXPECT_NE(flat(epoch_plan(ds, 43, 0)), flat(plan));
}

// Steps of batch 4 x 3 (three ranks, or accumulation 3): 12 images of one bucket per step, the
// same whichever way the 12 are split; every image still appears num_repeats times.
TEST(EpochPlan, StepsOfSeveralBatchesHoldOneBucketEach) {
  test::TempDir tmp;
  const std::vector<DatasetIndex> ds = two_bucket_dataset(tmp);
  // Bucket A: 30 images -> 3 steps (12, 12, 6); bucket B: 20 -> 2 steps (12, 8).
  EXPECT_EQ(steps_per_epoch(ds, 3), 5);
  const auto plan = epoch_plan(ds, 42, 0, 3);
  ASSERT_EQ(plan.size(), 5u);
  std::map<int, int> seen;
  std::multiset<size_t> sizes;
  for (const BatchPlan& b : plan) {
    sizes.insert(b.images.size());
    for (int i : b.images) {
      ++seen[i];
      EXPECT_EQ(ds[0].images[static_cast<size_t>(i)].bucket.bucket, b.bucket);
    }
  }
  for (const auto& [i, n] : seen) EXPECT_EQ(n, 10) << i;
  EXPECT_EQ(sizes, (std::multiset<size_t>{6, 8, 12, 12, 12}));
  // A bucket's images are shuffled the same way whatever the step size: the plan of batch 12
  // holds the images the plan of batch 4 x 3 holds, step for step.
  std::vector<DatasetIndex> twelve = ds;
  twelve[0].config.batch_size = 12;
  const auto same = epoch_plan(twelve, 42, 0);
  ASSERT_EQ(same.size(), plan.size());
  for (size_t i = 0; i < plan.size(); ++i) EXPECT_EQ(same[i].images, plan[i].images) << i;
}

TEST(BatchLoader, ResizeCropAndSizeConditioning) {
  test::TempDir tmp;
  test::add_image(tmp / "a", "wide.png", 600, 400, "wide");
  Findings findings;
  std::vector<DatasetIndex> ds{index_dataset(config_with({subset(tmp / "a", 1)}), findings)};
  const BatchLoader loader(ds, 7);
  const Batch b = loader.load(epoch_plan(ds, 7, 0).at(0), 0, 0);
  ASSERT_EQ(b.pixels.sizes(), (std::vector<int64_t>{1, 3, 384, 640}));
  // Resized to 640x427, center crop: top = (427 - 384) / 2 = 21.
  const cv::Mat expected = io::resize_image(test::pattern_image(600, 400), 640, 427)(cv::Rect(0, 21, 640, 384));
  EXPECT_TRUE(torch::equal(b.pixels[0], io::image_to_tensor(expected)));
  const SizeConditioning& s = b.sizes.at(0);
  EXPECT_EQ(s.original_height, 400);
  EXPECT_EQ(s.original_width, 600);
  EXPECT_EQ(s.crop_top, 21);
  EXPECT_EQ(s.crop_left, 0);
  EXPECT_EQ(s.target_height, 384);
  EXPECT_EQ(s.target_width, 640);
  EXPECT_EQ(b.captions.at(0), "wide");
  EXPECT_FLOAT_EQ(b.loss_weights[0].item<float>(), 1.0f);
}

TEST(BatchLoader, FlipMirrorsPixelsAndCrop) {
  test::TempDir tmp;
  const auto ds = single_image(tmp, 400, 600, [](SubsetConfig& s) { s.flip_aug = true; });
  const BatchLoader loader(ds, 3);
  // Resized 427x640, bucket 384x640: left = (427 - 384) / 2 = 21; mirrored: 427 - 384 - 21 = 22.
  const cv::Mat plain = io::resize_image(test::pattern_image(400, 600), 427, 640)(cv::Rect(21, 0, 384, 640));
  const torch::Tensor expected = io::image_to_tensor(plain);
  int flips = 0;
  for (int epoch = 0; epoch < 40; ++epoch) {
    const Batch b = loader.load(epoch_plan(ds, 3, epoch).at(0), epoch, 0);
    const bool flipped = b.sizes[0].crop_left == 22;
    if (flipped) ++flips;
    else EXPECT_EQ(b.sizes[0].crop_left, 21);
    EXPECT_TRUE(torch::equal(b.pixels[0], flipped ? torch::flip(expected, {2}) : expected));
  }
  EXPECT_GT(flips, 8);   // 40 fair coin flips: P(<= 8 or >= 32) < 1e-4
  EXPECT_LT(flips, 32);
}

TEST(BatchLoader, RandomCropStaysInsideAndIsReproducible) {
  test::TempDir tmp;
  const auto ds = single_image(tmp, 400, 600, [](SubsetConfig& s) { s.random_crop = true; });
  const BatchLoader loader(ds, 5);
  const cv::Mat resized = io::resize_image(test::pattern_image(400, 600), 427, 640);
  std::set<int> lefts;
  for (int epoch = 0; epoch < 30; ++epoch) {
    const Batch b = loader.load(epoch_plan(ds, 5, epoch).at(0), epoch, 0);
    const int left = b.sizes[0].crop_left;
    ASSERT_GE(left, 0);
    ASSERT_LE(left, 43);
    lefts.insert(left);
    EXPECT_TRUE(torch::equal(b.pixels[0], io::image_to_tensor(resized(cv::Rect(left, 0, 384, 640)))));
    EXPECT_TRUE(torch::equal(loader.load(epoch_plan(ds, 5, epoch).at(0), epoch, 0).pixels, b.pixels));
  }
  EXPECT_GT(lefts.size(), 10u);
}

TEST(BatchLoader, RegImagesCarryThePriorLossWeight) {
  test::TempDir tmp;
  test::add_image(tmp / "t", "0.png", 64, 64, "t");
  test::add_image(tmp / "r", "0.png", 64, 64, "r", 9);
  Findings findings;
  DatasetConfig d = config_with({subset(tmp / "t", 1), subset(tmp / "r", 1, true)}, 64, 2);
  d.buckets.min_bucket_reso = 64;
  d.prior_loss_weight = 0.25;
  std::vector<DatasetIndex> ds{index_dataset(d, findings)};
  const auto plan = epoch_plan(ds, 0, 0);
  ASSERT_EQ(plan.size(), 1u);
  const Batch b = BatchLoader(ds, 0).load(plan[0], 0, 0);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_FLOAT_EQ(b.loss_weights[static_cast<int64_t>(i)].item<float>(), b.captions[i] == "r" ? 0.25f : 1.0f);
  EXPECT_NE(b.captions[0], b.captions[1]);
}

TEST(BatchLoader, CaptionProcessingIsSeededPerEpochAndStep) {
  test::TempDir tmp;
  test::add_image(tmp / "a", "0.png", 64, 64, "sks, a, b, c, d, e, f, g");
  Findings findings;
  SubsetConfig s = subset(tmp / "a", 1);
  s.caption.shuffle_caption = true;
  s.caption.keep_tokens = 1;
  DatasetConfig d = config_with({s}, 64);
  d.buckets.min_bucket_reso = 64;
  std::vector<DatasetIndex> ds{index_dataset(d, findings)};
  const BatchLoader loader(ds, 11);
  std::set<std::string> variants;
  for (int epoch = 0; epoch < 10; ++epoch) {
    const std::string c = loader.load(epoch_plan(ds, 11, epoch).at(0), epoch, 0).captions.at(0);
    EXPECT_EQ(c.rfind("sks, ", 0), 0u) << c;
    EXPECT_EQ(c, loader.load(epoch_plan(ds, 11, epoch).at(0), epoch, 0).captions.at(0));
    variants.insert(c);
  }
  EXPECT_GT(variants.size(), 5u);
}

}  // namespace
}  // namespace ls::data
