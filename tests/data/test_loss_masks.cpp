// Loss masks in the data layer: a subset's alpha_mask reads the images' alpha channel and a
// conditioning_data_dir the red channel of same-named mask images, brought to the bucket exactly as
// the pixels (resize, crop, flip); a batch with any mask gives every image one (ones for the rest);
// the latent cache keeps the mask in its entry and re-encodes when the mask image changes; missing
// or mis-sized mask images are findings naming the file.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/strings.h"
#include "data/bucket_image.h"
#include "data/dataset_builder.h"
#include "data/dataset_config.h"
#include "data/latent_cache.h"
#include "data/loader.h"
#include "support/support.h"

namespace ls::data {
namespace {

namespace fs = std::filesystem;

// An RGBA PNG (cv::imwrite takes BGRA) whose alpha is a horizontal ramp x * 255 / (w - 1).
void write_rgba(const fs::path& path, int width, int height) {
  fs::create_directories(path.parent_path());
  cv::Mat rgb = test::pattern_image(width, height, 3), bgra;
  cv::cvtColor(rgb, bgra, cv::COLOR_RGB2BGRA);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) bgra.at<cv::Vec4b>(y, x)[3] = static_cast<uint8_t>(x * 255 / (width - 1));
  ASSERT_TRUE(cv::imwrite(path.string(), bgra));
}

// A mask image whose red channel is a vertical ramp and whose green/blue are noise (ignored).
void write_mask_image(const fs::path& path, int width, int height) {
  cv::Mat rgb(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uint8_t>(y * 255 / (height - 1)), static_cast<uint8_t>(x * 3),
                                          static_cast<uint8_t>(7 * x + y));
  fs::create_directories(path.parent_path());
  io::write_image(path.string(), rgb);
}

DataConfig mask_config(const fs::path& dir, bool alpha, bool cond, bool flip = false) {
  DatasetConfig d;
  d.buckets.resolution = {64, 64};
  d.buckets.enable_bucket = true;
  d.buckets.min_bucket_reso = 32;
  d.buckets.bucket_reso_steps = 32;
  d.batch_size = 2;
  SubsetConfig s;
  s.image_dir = (dir / "img").string();
  s.alpha_mask = alpha;
  if (cond) s.conditioning_data_dir = (dir / "masks").string();
  s.flip_aug = flip;
  d.subsets = {s};
  DataConfig c;
  c.source = "test";
  c.datasets = {d};
  return c;
}

TEST(LossMasks, AlphaChannelFollowsTheImagesGeometry) {
  test::TempDir tmp;
  write_rgba(tmp / "img" / "a.png", 96, 80);  // resized to fit a 64-px bucket, then centre-cropped
  Findings f;
  const auto ds = index_datasets(mask_config(tmp.path(), true, false), f);
  require_no_errors(f, "test");
  const ImageRecord& rec = ds[0].images.at(0);
  ASSERT_EQ(rec.mask, ImageRecord::Mask::kAlpha);
  core::Rng rng(1);
  const CropOffset crop = choose_crop(rec.bucket.resized, rec.bucket.bucket, false, rng);
  for (bool flipped : {false, true}) {
    const PreparedImage img = prepare_image(rec, crop, flipped);
    ASSERT_TRUE(img.mask.defined());
    ASSERT_EQ(img.mask.sizes(), (std::vector<int64_t>{1, img.pixels.size(1), img.pixels.size(2)}));
    // The same geometry by hand: resize the alpha as an image, cut, mirror.
    const io::DecodedImage dec = io::read_image(rec.path, true);
    cv::Mat a = io::resize_image(dec.alpha, rec.bucket.resized.width, rec.bucket.resized.height);
    a = a(cv::Rect(crop.left, crop.top, rec.bucket.bucket.width, rec.bucket.bucket.height)).clone();
    if (flipped) cv::flip(a, a, 1);
    const auto expected = torch::from_blob(a.data, {1, a.rows, a.cols}, torch::kUInt8).to(torch::kFloat) / 255.0;
    EXPECT_TRUE(torch::equal(img.mask, expected)) << flipped;
    // A ramp in x: left is transparent, right opaque; mirrored when flipped.
    const double left = img.mask[0].select(1, 0).mean().item<double>();
    const double right = img.mask[0].select(1, -1).mean().item<double>();
    EXPECT_LT(flipped ? right : left, 0.2);
    EXPECT_GT(flipped ? left : right, 0.8);
  }
  // An image without alpha masks nothing: all ones.
  test::add_image(tmp / "img", "b.png", 64, 64, "cap", 1);
  Findings f2;
  const auto ds2 = index_datasets(mask_config(tmp.path(), true, false), f2);
  const ImageRecord& plain = ds2[0].images.at(1);
  EXPECT_TRUE(torch::equal(prepare_image(plain, {0, 0}, false).mask, torch::ones({1, 64, 64})));
}

TEST(LossMasks, MaskImagesRedChannelAndFindings) {
  test::TempDir tmp;
  test::add_image(tmp / "img", "a.png", 64, 64, "cap", 1);
  test::add_image(tmp / "img", "b.png", 64, 64, "cap", 2);
  write_mask_image(tmp / "masks" / "a.png", 64, 64);
  Findings f;
  index_datasets(mask_config(tmp.path(), false, true), f);
  ASSERT_EQ(f.size(), 1u);  // b has no mask image
  EXPECT_EQ(f[0].code, "missing_mask");
  EXPECT_NE(f[0].message.find("b.png"), std::string::npos) << f[0].message;
  EXPECT_NE(f[0].message.find("conditioning_data_dir"), std::string::npos) << f[0].message;

  write_mask_image(tmp / "masks" / "b.webp", 32, 64);  // any image extension; wrong size
  Findings f2;
  index_datasets(mask_config(tmp.path(), false, true), f2);
  ASSERT_EQ(f2.size(), 1u);
  EXPECT_EQ(f2[0].code, "bad_mask");
  EXPECT_NE(f2[0].message.find("resize the mask"), std::string::npos) << f2[0].message;

  write_mask_image(tmp / "masks" / "b.webp", 64, 64);
  Findings f3;
  const auto ds = index_datasets(mask_config(tmp.path(), false, true), f3);
  require_no_errors(f3, "test");
  const ImageRecord& a = ds[0].images.at(0);
  ASSERT_EQ(a.mask, ImageRecord::Mask::kImage);
  const PreparedImage img = prepare_image(a, {0, 0}, false);
  // Red channel y * 255 / 63, read as x / 255.
  for (int64_t y : {0, 21, 63})
    EXPECT_NEAR(img.mask[0][y][5].item<double>(), static_cast<double>(y * 255 / 63) / 255.0, 1e-7) << y;

  // A batch with masks: [B,1,H,W].
  const BatchLoader loader(ds, 1);
  const auto plan = epoch_plan(ds, 1, 0);
  const Batch batch = loader.load(plan.at(0), 0, 0);
  ASSERT_TRUE(batch.masks.defined());
  EXPECT_EQ(batch.masks.sizes(), (std::vector<int64_t>{2, 1, 64, 64}));
}

TEST(LossMasks, LatentCacheKeepsTheMaskAndFollowsItsEdits) {
  test::TempDir tmp;
  test::add_image(tmp / "img", "a.png", 64, 64, "cap", 1);
  write_mask_image(tmp / "masks" / "a.png", 64, 64);
  auto encode = [](const torch::Tensor& px, const std::vector<uint64_t>&) { return torch::avg_pool2d(px, 8); };
  const std::string dir = (tmp / "cache").string();
  const DataConfig config = mask_config(tmp.path(), false, true, /*flip=*/true);
  Findings f;
  const auto ds = index_datasets(config, f);
  require_no_errors(f, "test");
  const LatentCache cache(dir, "m");
  EXPECT_EQ(cache.fill(ds, encode, 2, false).encoded, 1);
  const ImageRecord& rec = ds[0].images.at(0);
  const SubsetConfig& subset = ds[0].config.subsets.at(0);
  const PreparedImage img = prepare_image(rec, {0, 0}, false);
  const CachedLatents plain = cache.load_entry(rec, subset, false), mirrored = cache.load_entry(rec, subset, true);
  EXPECT_TRUE(torch::equal(plain.mask, img.mask));
  EXPECT_TRUE(torch::equal(mirrored.mask, torch::flip(img.mask, {2})));
  const std::string key_before = cache.key(rec, subset);
  // The same image without a mask has another key (the entry would lack the mask).
  Findings f1;
  const auto unmasked = index_datasets(mask_config(tmp.path(), false, false, true), f1);
  EXPECT_NE(cache.key(unmasked[0].images.at(0), unmasked[0].config.subsets.at(0)), key_before);
  // Editing the mask image re-encodes the entry.
  cv::Mat m = io::read_image_rgb((tmp / "masks" / "a.png").string());
  m.at<cv::Vec3b>(3, 3)[0] ^= 0xff;
  io::write_image((tmp / "masks" / "a.png").string(), m);
  Findings f2;
  const auto edited = index_datasets(config, f2);
  EXPECT_NE(cache.key(edited[0].images.at(0), edited[0].config.subsets.at(0)), key_before);
  EXPECT_EQ(cache.fill(edited, encode, 2, false).encoded, 1);
}

TEST(LossMasks, DatasetTomlKeysResolveAgainstTheFile) {
  const DataConfig c = parse_dataset_toml(
      "[[datasets]]\n[[datasets.subsets]]\nimage_dir = \"img\"\nalpha_mask = true\nconditioning_data_dir = \"masks\"\n",
      "t.toml", "/base");
  const SubsetConfig& s = c.datasets.at(0).subsets.at(0);
  EXPECT_TRUE(s.alpha_mask);
  EXPECT_EQ(s.conditioning_data_dir, "/base/masks");
}

}  // namespace
}  // namespace ls::data
