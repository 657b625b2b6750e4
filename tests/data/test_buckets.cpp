// data/buckets: bucket lists, bucket choice, crops and validation, against values worked out by
// hand from kohya-ss/sd-scripts (model_util.make_bucket_resolutions, train_util.BucketManager,
// trim_and_resize_if_required, get_crop_ltrb). The arithmetic is in the comments.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/buckets.h"

namespace {

using ls::data::BucketChoice;
using ls::data::BucketOptions;
using ls::data::BucketSelector;
using ls::data::Reso;

std::vector<Reso> pairs(std::initializer_list<std::pair<int, int>> list) {
  std::vector<Reso> out;
  for (auto [w, h] : list) out.push_back({w, h});
  return out;
}

std::string show(const std::vector<Reso>& v) {
  std::string s;
  for (Reso r : v) s += "(" + std::to_string(r.width) + "," + std::to_string(r.height) + ")";
  return s;
}

void expect_choice(const BucketSelector& selector, int w, int h, Reso bucket, Reso resized, double ar_error) {
  const BucketChoice c = selector.select(w, h);
  EXPECT_EQ(c.bucket, bucket) << w << "x" << h << " -> " << c.bucket.width << "x" << c.bucket.height;
  EXPECT_EQ(c.resized, resized) << w << "x" << h << " -> " << c.resized.width << "x" << c.resized.height;
  EXPECT_NEAR(c.ar_error, ar_error, 1e-12) << w << "x" << h;
}

std::string error_of(const BucketOptions& options) {
  try {
    BucketSelector selector(options);
  } catch (const ls::Error& e) {
    return e.what();
  }
  return "";
}

// resolution 1024^2, min 256, max 2048, steps 64: area A = 1048576, square floor(1024/64)*64 = 1024.
// For each w: h = min(2048, floor(A / w / 64) * 64):
//  w 256..512 -> A/w = 4096, 3276, 2730, 2340, 2048 -> 2048 (capped)
//  576 -> 1820 -> 1792 | 640 -> 1638 -> 1600 | 704 -> 1489 -> 1472 | 768 -> 1365 -> 1344
//  832 -> 1260 -> 1216 | 896 -> 1170 -> 1152 | 960 -> 1092 -> 1088 | 1024 -> 1024
//  1088 -> 963 -> 960 | 1152 -> 910 -> 896 | 1216 -> 862 -> 832 | 1280 -> 819 -> 768
//  1344 -> 780 -> 768 | 1408 -> 744 -> 704 | 1472 -> 712 -> 704 | 1536 -> 682 -> 640
//  1600 -> 655 -> 640 | 1664 -> 630 -> 576 | 1728 -> 606 -> 576 | 1792 -> 585 -> 576
//  1856 -> 564 -> 512 | 1920 -> 546 -> 512 | 1984 -> 528 -> 512 | 2048 -> 512
// 29 pairs (w, h); their transposes add 12 new ones ((2048,256..448), (768,1280), (704,1408),
// (640,1536), (576,1664), (576,1728), (512,1856..1984)): 41 buckets.
const std::vector<Reso> kBuckets1024 = pairs({
    {256, 2048}, {320, 2048}, {384, 2048}, {448, 2048}, {512, 1856}, {512, 1920}, {512, 1984},
    {512, 2048}, {576, 1664}, {576, 1728}, {576, 1792}, {640, 1536}, {640, 1600}, {704, 1408},
    {704, 1472}, {768, 1280}, {768, 1344}, {832, 1216}, {896, 1152}, {960, 1088}, {1024, 1024},
    {1088, 960}, {1152, 896}, {1216, 832}, {1280, 768}, {1344, 768}, {1408, 704}, {1472, 704},
    {1536, 640}, {1600, 640}, {1664, 576}, {1728, 576}, {1792, 576}, {1856, 512}, {1920, 512},
    {1984, 512}, {2048, 256}, {2048, 320}, {2048, 384}, {2048, 448}, {2048, 512}});

TEST(Buckets, SdxlResolutionGives41Buckets) {
  const auto got = ls::data::make_bucket_resolutions({1024, 1024}, 256, 2048, 64);
  EXPECT_EQ(got.size(), 41u);
  EXPECT_EQ(show(got), show(kBuckets1024));
  for (Reso r : got) {
    EXPECT_LE(static_cast<long>(r.width) * r.height, 1024L * 1024) << show({r});
    EXPECT_EQ(r.width % 64, 0);
    EXPECT_EQ(r.height % 64, 0);
  }
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
  // The selector with default options uses exactly this list.
  EXPECT_EQ(show(BucketSelector(BucketOptions{}).predefined()), show(kBuckets1024));
}

// resolution 512: A = 262144, square 512. w 256 -> 1024 | 320 -> 819 -> 768 | 384 -> 682 -> 640
// | 448 -> 585 -> 576 | 512 | 576 -> 455 -> 448 | 640 -> 409 -> 384 | 704 -> 372 -> 320
// | 768 -> 341 -> 320 | 832..1024 -> 315, 292, 273, 256 -> 256 | 1088 -> 240 -> 192 < 256: none.
// 13 pairs + transposes (320,704), (256,832), (256,896), (256,960) = 17.
TEST(Buckets, QuickstartResolution512) {
  const auto expected = pairs({{256, 832}, {256, 896}, {256, 960}, {256, 1024}, {320, 704}, {320, 768},
                               {384, 640}, {448, 576}, {512, 512}, {576, 448}, {640, 384}, {704, 320},
                               {768, 320}, {832, 256}, {896, 256}, {960, 256}, {1024, 256}});
  EXPECT_EQ(show(ls::data::make_bucket_resolutions({512, 512}, 256, 2048, 64)), show(expected));
}

// resolution 768x512: A = 393216, square floor(sqrt(A) = 627.06 / 64) * 64 = 576 (not a pair).
// w 256 -> 1536 | 320 -> 1228 -> 1216 | 384 -> 1024 | 448 -> 877 -> 832 | 512 -> 768
// | 576 -> 682 -> 640 | 640 -> 614 -> 576 | 704 -> 558 -> 512 | 768 -> 512 | 832 -> 472 -> 448
// | 896 -> 438 -> 384 | 960 -> 409 -> 384 | 1024 -> 384 | 1088, 1152, 1216 -> 361, 341, 323 -> 320
// | 1280..1536 -> 307, 292, 279, 267, 256 -> 256 | 1600 -> 245 -> 192: none.
// 21 pairs + 9 new transposes + the square = 31.
TEST(Buckets, NonSquareResolution768x512) {
  const auto expected = pairs(
      {{256, 1280}, {256, 1344}, {256, 1408}, {256, 1472}, {256, 1536}, {320, 1088}, {320, 1152}, {320, 1216},
       {384, 896},  {384, 960},  {384, 1024}, {448, 832},  {512, 704},  {512, 768},  {576, 576},  {576, 640},
       {640, 576},  {704, 512},  {768, 512},  {832, 448},  {896, 384},  {960, 384},  {1024, 384}, {1088, 320},
       {1152, 320}, {1216, 320}, {1280, 256}, {1344, 256}, {1408, 256}, {1472, 256}, {1536, 256}});
  BucketOptions o;
  o.resolution = {768, 512};
  EXPECT_EQ(show(BucketSelector(o).predefined()), show(expected));
  // 1200x800 (ar 1.5): exact ratio in (768,512); 1.5 > 1.5 is false -> scale 768/1200 = 0.64
  // -> (768, 512).
  expect_choice(BucketSelector(o), 1200, 800, {768, 512}, {768, 512}, 0.0);
}

TEST(Buckets, SelectUpscalePath) {
  const BucketSelector s{BucketOptions{}};
  // 1000x1500: ar 2/3. Nearest ratios: (832,1216) 0.68421 (error +0.01754), (768,1280) 0.6.
  // 0.6667 > 0.6842 is false -> scale = 832/1000 = 0.832 -> (832.5 -> 832, 1248.5 -> 1248).
  expect_choice(s, 1000, 1500, {832, 1216}, {832, 1248}, 832.0 / 1216 - 1000.0 / 1500);
  // 1920x1080: ar 1.7778; (1344,768) 1.75 (error -0.0278) beats (1408,704) 2.0.
  // 1.7778 > 1.75 -> scale = 768/1080 -> (1365.33 + .5 -> 1365, 768).
  expect_choice(s, 1920, 1080, {1344, 768}, {1365, 768}, 1.75 - 1920.0 / 1080);
  // 512x512 is not a bucket; ar 1 -> (1024,1024), scale 2 (upscaled).
  expect_choice(s, 512, 512, {1024, 1024}, {1024, 1024}, 0.0);
  // A predefined size is taken as is.
  expect_choice(s, 832, 1216, {832, 1216}, {832, 1216}, 0.0);
  // 4:1 panorama 4000x1000 -> (2048,512) exactly, scale 0.512.
  expect_choice(s, 4000, 1000, {2048, 512}, {2048, 512}, 0.0);
  // 5:1 panorama 3000x600: (2048,448) 4.571 (error -0.4286) vs (2048,384) 5.333 (+0.3333).
  // 5 > 5.333 is false -> scale 2048/3000 -> (2048, 409.6 + .5 -> 410).
  expect_choice(s, 3000, 600, {2048, 384}, {2048, 410}, 2048.0 / 384 - 5.0);
}

TEST(Buckets, TieTakesTheFirstBucketInSortedOrder) {
  // 1500x800: ar 1.875 lies exactly between (1344,768) 1.75 and (1408,704) 2.0 (errors -0.125 and
  // +0.125, exact in binary). numpy argmin keeps the first: (1344,768); scale 768/800 = 0.96
  // -> (1440, 768).
  expect_choice(BucketSelector(BucketOptions{}), 1500, 800, {1344, 768}, {1440, 768}, -0.125);
}

TEST(Buckets, NoUpscalePath) {
  BucketOptions o;
  o.bucket_no_upscale = true;
  const BucketSelector s(o);
  EXPECT_TRUE(s.predefined().empty());
  // 700x500: area 350000 <= 1048576, kept; bucket floored to 64: (640, 448); error 1.428571 - 1.4.
  expect_choice(s, 700, 500, {640, 448}, {700, 500}, 640.0 / 448 - 1.4);
  // 1000x1000 -> (960, 960); exactly the area (1024x1024) is not shrunk either.
  expect_choice(s, 1000, 1000, {960, 960}, {1000, 1000}, 0.0);
  expect_choice(s, 1024, 1024, {1024, 1024}, {1024, 1024}, 0.0);
  // 3000x2000 (ar 1.5, area 6e6 > A): width sqrt(A * 1.5) = 1254.15, height A / 1254.15 = 836.10.
  //  width first:  round_to_steps(1254.15) = 1254 - 38 = 1216; 1216 / 1.5 = 810.67 -> 811 - 43 = 768;
  //                ratio 1216/768 = 1.5833 (error 0.0833)
  //  height first: round_to_steps(836.10) = 836 - 4 = 832; 832 * 1.5 = 1248 -> 1248 - 32 = 1216;
  //                ratio 1216/832 = 1.4615 (error 0.0385) -> wins
  //  resized = (int(832 * 1.5 + .5) = 1248, 832); bucket (1248 - 32, 832) = (1216, 832).
  expect_choice(s, 3000, 2000, {1216, 832}, {1248, 832}, 1216.0 / 832 - 1.5);
  // min/max are ignored with bucket_no_upscale (kohya warns), so no error for a small max.
  o.max_bucket_reso = 512;
  EXPECT_NO_THROW(BucketSelector{o});
}

TEST(Buckets, NoUpscaleRejectsImagesBelowOneStep) {
  BucketOptions o;
  o.bucket_no_upscale = true;
  const BucketSelector s(o);
  // 50x40: bucket (0, 0), where kohya divides by zero.
  EXPECT_THROW(s.select(50, 40), ls::Error);
  // 200000x10: shrunk height 7.2 rounds to 0 steps.
  EXPECT_THROW(s.select(200000, 10), ls::Error);
  EXPECT_THROW(s.select(0, 10), ls::Error);
}

TEST(Buckets, WithoutBucketingOneBucketIsCovered) {
  BucketOptions o;
  o.enable_bucket = false;
  o.min_bucket_reso = 300;  // ignored without bucketing, as in kohya
  const BucketSelector s(o);
  EXPECT_EQ(show(s.predefined()), "(1024,1024)");
  // 1500x1000: ar 1.5 > 1 -> scale 1024/1000 -> (1536, 1024), ar error 1 - 1.5.
  expect_choice(s, 1500, 1000, {1024, 1024}, {1536, 1024}, -0.5);
  // 512x768: ar 0.667 <= 1 -> scale 1024/512 = 2 -> (1024, 1536).
  expect_choice(s, 512, 768, {1024, 1024}, {1024, 1536}, 1.0 - 512.0 / 768);
  expect_choice(s, 1024, 1024, {1024, 1024}, {1024, 1024}, 0.0);
}

TEST(Buckets, CentreCrop) {
  ls::core::Rng rng(1);
  // (832,1248) into (832,1216): trim (0, 32) -> (0, 16). (1365,768) into (1344,768): trim 21 -> 10.
  auto c = ls::data::choose_crop({832, 1248}, {832, 1216}, false, rng);
  EXPECT_EQ(c.left, 0);
  EXPECT_EQ(c.top, 16);
  c = ls::data::choose_crop({1365, 768}, {1344, 768}, false, rng);
  EXPECT_EQ(c.left, 10);
  EXPECT_EQ(c.top, 0);
  c = ls::data::choose_crop({1024, 1024}, {1024, 1024}, true, rng);
  EXPECT_EQ(c.left, 0);
  EXPECT_EQ(c.top, 0);
  EXPECT_THROW(ls::data::choose_crop({1000, 1024}, {1024, 1024}, false, rng), ls::Error);
}

TEST(Buckets, RandomCropDrawsWidthThenHeightAndOnlyWhenTrimmed) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    ls::core::Rng rng(seed), ref(seed);
    const auto c = ls::data::choose_crop({1029, 1031}, {1024, 1024}, true, rng);  // trim (5, 7)
    EXPECT_EQ(c.left, ref.range(0, 5));
    EXPECT_EQ(c.top, ref.range(0, 7));
    EXPECT_EQ(rng.next(), ref.next());  // exactly two draws
    // No trim on an axis: no draw there (kohya skips randint); the height draw comes first here.
    ls::core::Rng rng2(seed), ref2(seed);
    const auto d = ls::data::choose_crop({1024, 1031}, {1024, 1024}, true, rng2);
    EXPECT_EQ(d.left, 0);
    EXPECT_EQ(d.top, ref2.range(0, 7));
    EXPECT_EQ(rng2.next(), ref2.next());
  }
}

TEST(Buckets, RandomCropCoversTheRangeAndRepeatsPerSeed) {
  std::set<int> lefts, tops;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    ls::core::Rng a(seed, {7}), b(seed, {7});
    const auto ca = ls::data::choose_crop({1365, 800}, {1344, 768}, true, a);  // trim (21, 32)
    const auto cb = ls::data::choose_crop({1365, 800}, {1344, 768}, true, b);
    EXPECT_EQ(ca.left, cb.left);
    EXPECT_EQ(ca.top, cb.top);
    EXPECT_GE(ca.left, 0);
    EXPECT_LE(ca.left, 21);
    EXPECT_GE(ca.top, 0);
    EXPECT_LE(ca.top, 32);
    lefts.insert(ca.left);
    tops.insert(ca.top);
  }
  EXPECT_EQ(lefts.size(), 22u);  // every offset 0..21 (both ends included, as randint)
  EXPECT_EQ(tops.size(), 33u);
}

TEST(Buckets, KohyaCropConditioningIsTheFittedBoxNotTheTrim) {
  // bucket (1024,1024), original 1000x1500: bucket ar 1 > 2/3 -> width 1024 * 2/3 = 682.67,
  // left = (1024 - 682.67) // 2 = 170, top 0, right 852.67, bottom 1024 (the trim is (0, 256)).
  auto box = ls::data::kohya_crop_ltrb({1024, 1024}, {1000, 1500});
  EXPECT_DOUBLE_EQ(box.left, 170.0);
  EXPECT_DOUBLE_EQ(box.top, 0.0);
  EXPECT_NEAR(box.right, 170.0 + 2048.0 / 3, 1e-9);
  EXPECT_DOUBLE_EQ(box.bottom, 1024.0);
  // bucket (1344,768), original 1920x1080: 1.75 > 1.778 false -> height 1344 / (16/9) = 756,
  // top = (768 - 756) // 2 = 6, left 0.
  box = ls::data::kohya_crop_ltrb({1344, 768}, {1920, 1080});
  EXPECT_DOUBLE_EQ(box.left, 0.0);
  EXPECT_DOUBLE_EQ(box.top, 6.0);
  EXPECT_DOUBLE_EQ(box.right, 1344.0);
  EXPECT_NEAR(box.bottom, 762.0, 1e-9);
}

TEST(Buckets, InvalidOptionsNameTheOption) {
  auto with = [](auto change) {
    BucketOptions o;
    change(o);
    return error_of(o);
  };
  EXPECT_NE(with([](BucketOptions& o) { o.bucket_reso_steps = 0; }).find("bucket_reso_steps"), std::string::npos);
  std::string e = with([](BucketOptions& o) { o.min_bucket_reso = 200; });
  EXPECT_NE(e.find("min_bucket_reso"), std::string::npos) << e;
  EXPECT_NE(e.find("use 192"), std::string::npos) << e;  // 200 - 200 % 64, kohya's adjustment
  e = with([](BucketOptions& o) { o.max_bucket_reso = 2000; });
  EXPECT_NE(e.find("max_bucket_reso"), std::string::npos) << e;
  EXPECT_NE(e.find("use 2048"), std::string::npos) << e;  // 2000 + 64 - 2000 % 64
  e = with([](BucketOptions& o) { o.min_bucket_reso = 1024; o.max_bucket_reso = 512; o.resolution = {512, 512}; });
  EXPECT_NE(e.find("larger than max_bucket_reso"), std::string::npos) << e;
  e = with([](BucketOptions& o) { o.resolution = {4096, 4096}; });
  EXPECT_NE(e.find("max_bucket_reso 2048 is smaller than the resolution"), std::string::npos) << e;
  e = with([](BucketOptions& o) { o.resolution = {1024, 128}; });
  EXPECT_NE(e.find("min_bucket_reso 256 is larger than the resolution"), std::string::npos) << e;
  e = with([](BucketOptions& o) { o.resolution = {0, 1024}; });
  EXPECT_NE(e.find("resolution"), std::string::npos) << e;
  EXPECT_EQ(with([](BucketOptions& o) { o.resolution = {4096, 4096}; o.bucket_no_upscale = true; }), "");
  for (const std::string& msg : {with([](BucketOptions& o) { o.min_bucket_reso = 200; }),
                                 with([](BucketOptions& o) { o.bucket_reso_steps = -8; })}) {
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;  // one line
  }
}

}  // namespace
