// DCT perceptual hash and the all-pairs near-duplicate scan (see phash.h for the recipe).
#include "data/phash.h"

#include <algorithm>
#include <array>

#include <opencv2/imgproc.hpp>

#include "core/error.h"

namespace ls::data {

uint64_t perceptual_hash(const cv::Mat& rgb) {
  LS_CHECK(!rgb.empty() && rgb.depth() == CV_8U && (rgb.channels() == 3 || rgb.channels() == 1),
           "perceptual_hash: expected a non-empty 8-bit RGB or gray image, got type ", rgb.type());
  cv::Mat gray, small, dct;
  if (rgb.channels() == 3) cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
  else gray = rgb;
  cv::resize(gray, small, cv::Size(32, 32), 0, 0, cv::INTER_AREA);
  small.convertTo(small, CV_32F);
  cv::dct(small, dct);  // [32,32], orthonormal DCT-II along rows and columns
  std::array<float, 64> block{};
  for (int i = 0; i < 64; ++i) block[i] = dct.at<float>(i / 8, i % 8);
  std::array<float, 64> sorted = block;
  std::sort(sorted.begin(), sorted.end());
  const float median = 0.5f * (sorted[31] + sorted[32]);
  uint64_t hash = 0;
  for (int i = 0; i < 64; ++i)
    if (block[i] > median) hash |= uint64_t{1} << i;
  return hash;
}

int hamming_distance(uint64_t a, uint64_t b) { return __builtin_popcountll(a ^ b); }

std::vector<NearDuplicate> find_near_duplicates(const std::vector<uint64_t>& hashes, int max_distance) {
  std::vector<NearDuplicate> pairs;
  for (size_t a = 0; a < hashes.size(); ++a)
    for (size_t b = a + 1; b < hashes.size(); ++b) {
      const int d = hamming_distance(hashes[a], hashes[b]);
      if (d <= max_distance) pairs.push_back({a, b, d});
    }
  return pairs;  // the loops already produce (a, b) order
}

}  // namespace ls::data
