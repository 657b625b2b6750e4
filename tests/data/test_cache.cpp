// Latent and text caches: hits on the second epoch and the second run, exactly one re-encode
// after editing one image, none after touching one, everything after changing the model.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "core/error.h"
#include "data/dataset_builder.h"
#include "data/latent_cache.h"
#include "data/loader.h"
#include "support/support.h"

namespace ls::data {
namespace {

namespace fs = std::filesystem;

// A deterministic stand-in for the VAE that is cheap and depends on every pixel block:
// 8x8 average pool, 3 channels -> [B,3,H/8,W/8]. Counts the images it sees.
struct CountingEncoder {
  int64_t images = 0;
  torch::Tensor operator()(const torch::Tensor& px) {
    images += px.size(0);
    return torch::avg_pool2d(px, 8);
  }
};

struct Fixture {
  test::TempDir tmp;
  DataConfig config;
  Fixture(bool flip = false) {
    for (int i = 0; i < 6; ++i)
      test::add_image(tmp / "img", str_cat(i, ".png"), i % 2 ? 96 : 128, i % 2 ? 128 : 96, "cap", i);
    DatasetConfig d;
    d.buckets.resolution = {128, 128};
    d.buckets.min_bucket_reso = 64;
    d.batch_size = 2;
    SubsetConfig s;
    s.image_dir = (tmp / "img").string();
    s.num_repeats = 2;
    s.flip_aug = flip;
    d.subsets = {s};
    config.source = "test";
    config.datasets = {d};
  }
  std::vector<DatasetIndex> index() const {
    Findings f;
    auto ds = index_datasets(config, f);
    require_no_errors(f, "test");
    return ds;
  }
  std::string cache_dir() const { return (tmp / "cache").string(); }
};

TEST(LatentCache, SecondEpochAndSecondRunHitEditReencodesOne) {
  Fixture fx;
  auto ds = fx.index();
  CountingEncoder enc;
  auto encode = [&](const torch::Tensor& px, const std::vector<uint64_t>&) { return enc(px); };
  {
    const LatentCache cache(fx.cache_dir(), "model-a");
    const CacheStats first = cache.fill(ds, encode, 4, false);
    EXPECT_EQ(first.encoded, 6);
    EXPECT_EQ(first.hits, 0);
    EXPECT_EQ(enc.images, 6);
    // Two epochs read latents only.
    const BatchLoader loader(ds, 1, &cache);
    for (int epoch = 0; epoch < 2; ++epoch) {
      const auto plan = epoch_plan(ds, 1, epoch);
      for (size_t step = 0; step < plan.size(); ++step) {
        const Batch b = loader.load(plan[step], epoch, static_cast<int64_t>(step));
        EXPECT_FALSE(b.pixels.defined());
        ASSERT_EQ(b.latents.size(0), static_cast<int64_t>(plan[step].images.size()));
        // Cached latents equal encoding the center-cropped image now.
        const ImageRecord& rec = ds[0].images[static_cast<size_t>(plan[step].images[0])];
        const CropOffset crop{(rec.bucket.resized.width - rec.bucket.bucket.width) / 2,
                              (rec.bucket.resized.height - rec.bucket.bucket.height) / 2};
        const torch::Tensor direct = torch::avg_pool2d(prepare_image(rec, crop, false).pixels.unsqueeze(0), 8)[0];
        EXPECT_TRUE(test::all_close(b.latents[0], direct, 0, 1e-6));
      }
    }
    EXPECT_EQ(enc.images, 6);
  }
  // Second run: fresh index and cache objects.
  ds = fx.index();
  const LatentCache again(fx.cache_dir(), "model-a");
  CacheStats second = again.fill(ds, encode, 4, false);
  EXPECT_EQ(second.hits, 6);
  EXPECT_EQ(second.encoded, 0);

  // Touching (new mtime, same bytes) re-encodes nothing: keys follow content.
  const fs::path touched = fx.tmp / "img/2.png";
  fs::last_write_time(touched, fs::last_write_time(touched) + std::chrono::hours(1));
  ds = fx.index();
  EXPECT_EQ(again.fill(ds, encode, 4, false).encoded, 0);

  // Editing one image re-encodes exactly that one.
  io::write_image(touched.string(), test::pattern_image(128, 96, 99));
  ds = fx.index();
  const int64_t before = enc.images;
  second = again.fill(ds, encode, 4, false);
  EXPECT_EQ(second.encoded, 1);
  EXPECT_EQ(second.hits, 5);
  EXPECT_EQ(enc.images - before, 1);

  // Another model misses everything.
  EXPECT_EQ(LatentCache(fx.cache_dir(), "model-b").fill(ds, encode, 4, false).encoded, 6);
}

TEST(LatentCache, FlipAugCachesTheMirroredLatentToo) {
  Fixture fx(/*flip=*/true);
  auto ds = fx.index();
  CountingEncoder enc;
  const LatentCache cache(fx.cache_dir(), "m");
  cache.fill(ds, [&](const torch::Tensor& px, const std::vector<uint64_t>&) { return enc(px); }, 3, false);
  EXPECT_EQ(enc.images, 12);  // plain + mirrored
  const ImageRecord& rec = ds[0].images[0];
  const SubsetConfig& s = ds[0].config.subsets[0];
  const CropOffset crop{(rec.bucket.resized.width - rec.bucket.bucket.width) / 2,
                        (rec.bucket.resized.height - rec.bucket.bucket.height) / 2};
  const torch::Tensor px = prepare_image(rec, crop, false).pixels;
  EXPECT_TRUE(test::all_close(cache.load(rec, s, true), torch::avg_pool2d(torch::flip(px, {2}).unsqueeze(0), 8)[0], 0, 1e-6));
  EXPECT_TRUE(test::all_close(cache.load(rec, s, false), torch::avg_pool2d(px.unsqueeze(0), 8)[0], 0, 1e-6));
  // The key depends on flip_aug: turning it off is a different entry.
  SubsetConfig off = s;
  off.flip_aug = false;
  EXPECT_NE(cache.key(rec, off), cache.key(rec, s));
}

TEST(LatentCache, RefusesRandomCropAndTextCacheRefusesChangingCaptions) {
  Fixture fx;
  fx.config.datasets[0].subsets[0].random_crop = true;
  try {
    require_latent_cacheable(fx.config);
    FAIL() << "random_crop accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("random_crop"), std::string::npos);
  }
  EXPECT_NO_THROW(require_text_cacheable(fx.config));
  fx.config.datasets[0].subsets[0].caption.shuffle_caption = true;
  EXPECT_THROW(require_text_cacheable(fx.config), Error);
  fx.config.datasets[0].subsets[0].caption.shuffle_caption = false;
  fx.config.datasets[0].subsets[0].caption.caption_dropout_rate = 0.1;
  EXPECT_THROW(require_text_cacheable(fx.config), Error);
}

TEST(TextCache, OneEntryPerDistinctCaptionAndModel) {
  test::TempDir tmp;
  int calls = 0;
  const TextEncoder enc = [&](const std::vector<std::string>& captions) {
    std::vector<TensorMap> out;
    for (const std::string& c : captions) {
      ++calls;
      out.push_back({{"context", torch::full({2, 3}, static_cast<float>(c.size()))},
                     {"pooled", torch::full({4}, static_cast<float>(c[0]))}});
    }
    return out;
  };
  const TextCache cache((tmp / "text").string(), "te-a");
  CacheStats s = cache.fill({"a cat", "a dog", "a cat"}, enc, 8, false);
  EXPECT_EQ(s.encoded, 2);
  EXPECT_EQ(calls, 2);
  s = TextCache((tmp / "text").string(), "te-a").fill({"a cat", "a dog", "a bird"}, enc, 8, false);
  EXPECT_EQ(s.hits, 2);
  EXPECT_EQ(s.encoded, 1);
  const TensorMap m = cache.load("a bird");
  EXPECT_TRUE(torch::equal(m.at("context"), torch::full({2, 3}, 6.0f)));
  EXPECT_TRUE(torch::equal(m.at("pooled"), torch::full({4}, static_cast<float>('a'))));
  EXPECT_EQ(TextCache((tmp / "text").string(), "te-b").fill({"a cat"}, enc, 8, false).encoded, 1);
  EXPECT_THROW(cache.load("never cached"), Error);
}

TEST(TextCache, StaticCaptionsApplyPrefixAndSuffix) {
  Fixture fx;
  fx.config.datasets[0].subsets[0].caption.caption_prefix = "photo of";
  fx.config.datasets[0].subsets[0].caption.caption_suffix = "4k";
  EXPECT_EQ(static_captions(fx.index()), (std::vector<std::string>{"photo of cap 4k"}));
}

}  // namespace
}  // namespace ls::data
