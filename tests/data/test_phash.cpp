// data/phash: the hash equals an explicit-formula DCT-II of the 32x32 INTER_AREA gray image
// (bit order included), survives resizing, JPEG and brightness changes (<= 4 bits on photo-like
// scenes), separates different synthetic images (> 10 bits), shows its known weak spot
// (symmetric flat images), and the near-duplicate scan on hand-made hashes.
#include <array>
#include <cmath>
#include <cstdio>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "data/phash.h"
#include "data/synthetic.h"
#include "support/support.h"

namespace {

using ls::data::find_near_duplicates;
using ls::data::hamming_distance;
using ls::data::perceptual_hash;

cv::Mat synthetic(int index, uint64_t seed = 3) {
  ls::data::SyntheticOptions o;
  o.seed = seed;
  return ls::data::render_synthetic_image(ls::data::describe_synthetic_image(o, index, false));
}

TEST(PerceptualHash, HammingDistanceOnKnownValues) {
  EXPECT_EQ(hamming_distance(0, 0), 0);
  EXPECT_EQ(hamming_distance(0, ~uint64_t{0}), 64);
  EXPECT_EQ(hamming_distance(0b1011, 0b0110), 3);
  EXPECT_EQ(hamming_distance(uint64_t{1} << 63, 1), 2);
  EXPECT_EQ(hamming_distance(0xF0F0F0F0F0F0F0F0ULL, 0x0F0F0F0F0F0F0F0FULL), 64);
}

TEST(PerceptualHash, FindNearDuplicatesOnHandMadeHashes) {
  const std::vector<uint64_t> hashes = {0x0, 0xF, 0xFFFF000000000000ULL, 0x0, 0x7F};
  // 0-1: 4 bits, 0-3: 0, 1-3: 4, 1-4: 0xF^0x7F = 0x70 -> 3; 0-4 and 3-4: 7 (> 6); 2-*: >= 16.
  const auto pairs = find_near_duplicates(hashes);
  const std::vector<std::array<int, 3>> expected = {{0, 1, 4}, {0, 3, 0}, {1, 3, 4}, {1, 4, 3}};
  ASSERT_EQ(pairs.size(), expected.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    EXPECT_EQ(static_cast<int>(pairs[i].a), expected[i][0]) << i;
    EXPECT_EQ(static_cast<int>(pairs[i].b), expected[i][1]) << i;
    EXPECT_EQ(pairs[i].distance, expected[i][2]) << i;
  }
  const auto exact = find_near_duplicates(hashes, 0);
  ASSERT_EQ(exact.size(), 1u);
  EXPECT_EQ(exact[0].a * 10 + exact[0].b, 3u);
  EXPECT_EQ(find_near_duplicates(hashes, 7).size(), 6u);
  EXPECT_TRUE(find_near_duplicates({}).empty());
  EXPECT_TRUE(find_near_duplicates({42}).empty());
}

// Bits from DCT-II written out as the double sum, against cv::dct in the library.
TEST(PerceptualHash, EqualsExplicitDctFormula) {
  for (int index = 0; index < 6; ++index) {
    const cv::Mat rgb = synthetic(index);
    cv::Mat gray, small;
    cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
    cv::resize(gray, small, cv::Size(32, 32), 0, 0, cv::INTER_AREA);
    double coef[64];
    for (int u = 0; u < 8; ++u)
      for (int v = 0; v < 8; ++v) {
        double sum = 0;
        for (int y = 0; y < 32; ++y)
          for (int x = 0; x < 32; ++x)
            sum += small.at<uint8_t>(y, x) * std::cos(M_PI * (2 * y + 1) * u / 64) * std::cos(M_PI * (2 * x + 1) * v / 64);
        const double cu = u == 0 ? std::sqrt(1.0 / 32) : std::sqrt(2.0 / 32);
        const double cv_ = v == 0 ? std::sqrt(1.0 / 32) : std::sqrt(2.0 / 32);
        coef[u * 8 + v] = cu * cv_ * sum;  // row = vertical frequency
      }
    std::vector<double> sorted(coef, coef + 64);
    std::sort(sorted.begin(), sorted.end());
    const double median = (sorted[31] + sorted[32]) / 2;
    uint64_t expected = 0, ambiguous = 0;
    for (int i = 0; i < 64; ++i) {
      if (coef[i] > median) expected |= uint64_t{1} << i;
      if (std::abs(coef[i] - median) < 1e-3) ambiguous |= uint64_t{1} << i;  // float32 may tip these
    }
    const uint64_t got = perceptual_hash(rgb);
    EXPECT_EQ(got & ~ambiguous, expected & ~ambiguous) << "image " << index;
    EXPECT_EQ(got & 1, 1u) << "DC bit of a non-black image";
    EXPECT_EQ(__builtin_popcountll(ambiguous), 0) << "image " << index;
  }
  // Gray input hashes like the same gray expanded to RGB.
  cv::Mat gray;
  cv::cvtColor(synthetic(1), gray, cv::COLOR_RGB2GRAY);
  cv::Mat rgb;
  cv::cvtColor(gray, rgb, cv::COLOR_GRAY2RGB);
  EXPECT_EQ(perceptual_hash(gray), perceptual_hash(rgb));
  EXPECT_THROW(perceptual_hash(cv::Mat()), ls::Error);
  EXPECT_THROW(perceptual_hash(cv::Mat(4, 4, CV_32FC3)), ls::Error);
}

// A synthetic render with a photo-like luminance field on top (six random-phase low-frequency
// waves, amplitude falling with frequency), so the image has a natural spectrum to hash.
cv::Mat scene(int index) {
  cv::Mat img = synthetic(index);
  ls::core::Rng rng(11, {static_cast<uint64_t>(index)});
  std::vector<std::array<double, 4>> waves;  // fx, fy, phase, amplitude
  for (int k = 0; k < 6; ++k) {
    const double fx = rng.range(0, 4), fy = rng.range(0, 4);
    waves.push_back({fx, fy, rng.uniform() * 2 * M_PI, 25.0 / (1 + fx + fy)});
  }
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      double v = 0;
      for (const auto& w : waves)
        v += w[3] * std::cos(2 * M_PI * (w[0] * x / img.cols + w[1] * y / img.rows) + w[2]);
      cv::Vec3b& px = img.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) px[c] = cv::saturate_cast<uint8_t>(px[c] + v);
    }
  return img;
}

int max_distance_after_edits(const cv::Mat& img, bool print) {
  const uint64_t h = perceptual_hash(img);
  cv::Mat smaller, brighter, bgr, recompressed;
  cv::resize(img, smaller, cv::Size(), 0.7, 0.7, cv::INTER_AREA);
  img.convertTo(brighter, -1, 1.0, 12.0);  // +12 with saturation
  cv::cvtColor(img, bgr, cv::COLOR_RGB2BGR);
  std::vector<uint8_t> jpg;
  cv::imencode(".jpg", bgr, jpg, {cv::IMWRITE_JPEG_QUALITY, 60});
  cv::cvtColor(cv::imdecode(jpg, cv::IMREAD_COLOR), recompressed, cv::COLOR_BGR2RGB);
  int worst = 0;
  for (const auto& [what, other] : {std::pair{"70%", smaller}, {"jpeg q60", recompressed}, {"+12", brighter}}) {
    const int d = hamming_distance(h, perceptual_hash(other));
    if (print) std::printf("[phash]   %s: %d bits\n", what, d);
    worst = std::max(worst, d);
  }
  return worst;
}

TEST(PerceptualHash, SurvivesResizeJpegAndBrightness) {
  int worst = 0;
  for (int index = 0; index < 20; ++index) {
    const int d = max_distance_after_edits(scene(index), false);
    EXPECT_LE(d, 4) << "scene " << index;
    worst = std::max(worst, d);
  }
  std::printf("[phash] worst distance after 70%% resize / JPEG q60 / +12 brightness (20 scenes): %d bits\n", worst);
}

// The known weak spot of median-threshold pHash: when many of the 64 coefficients sit within
// noise of the median, noise decides those bits. That happens for a mirror-symmetric image (a
// centred shape on a flat background: every odd-frequency coefficient is 0 and the median falls
// in that cluster) and for low gray contrast (orange on red). Kept as the reference defines the
// hash: a dead zone around the median fixes these but tripled false matches among different
// synthetic images (28 -> 85 pairs <= 6 bits among 150).
TEST(PerceptualHash, SymmetricFlatImagesAreItsWeakSpot) {
  cv::Mat img(569, 383, CV_8UC3, cv::Scalar(25, 60, 220));
  cv::rectangle(img, cv::Rect(76, 169, 231, 231), cv::Scalar(245, 215, 20), cv::FILLED);  // centred
  cv::Mat gray, small, dct;
  cv::cvtColor(img, gray, cv::COLOR_RGB2GRAY);
  cv::resize(gray, small, cv::Size(32, 32), 0, 0, cv::INTER_AREA);
  small.convertTo(small, CV_32F);
  cv::dct(small, dct);
  int zeros = 0;
  for (int i = 0; i < 64; ++i) zeros += std::abs(dct.at<float>(i / 8, i % 8)) < 0.5f;
  EXPECT_GE(zeros, 28);  // odd horizontal frequencies vanish by the left-right mirror
  std::printf("[phash] centred square on a flat background, %d of 64 coefficients ~0:\n", zeros);
  max_distance_after_edits(img, true);
}

TEST(PerceptualHash, SeparatesDifferentImages) {
  std::vector<uint64_t> hashes;
  for (int index = 0; index < 20; ++index) hashes.push_back(perceptual_hash(synthetic(index)));
  int lowest = 64;
  for (size_t a = 0; a < hashes.size(); ++a)
    for (size_t b = a + 1; b < hashes.size(); ++b) {
      const int d = hamming_distance(hashes[a], hashes[b]);
      EXPECT_GT(d, 10) << "images " << a << " and " << b;
      lowest = std::min(lowest, d);
    }
  std::printf("[phash] smallest distance among 20 different synthetic images: %d bits\n", lowest);
  EXPECT_TRUE(find_near_duplicates(hashes).empty());
}

}  // namespace
