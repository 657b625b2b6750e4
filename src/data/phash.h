// Perceptual hash (DCT pHash) for near-duplicate detection in `dataset check`. The recipe of
// Zauner's thesis / pHash.org and of the Python `imagehash.phash`: grayscale, 32x32, 2-D DCT,
// the 8x8 lowest frequencies against their median. Hashes are ours (OpenCV resize and an
// orthonormal DCT), not bit-equal to imagehash's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>

namespace ls::data {

/// 64-bit DCT perceptual hash of an 8-bit RGB image (CV_8UC3; 1-channel gray also accepted):
/// gray (ITU-R 601 weights), resize to 32x32 with INTER_AREA, orthonormal 2-D DCT (cv::dct on
/// float32), top-left 8x8 block read row-major; bit i (value 1 << i) = coefficient i > median of
/// the 64. The DC term (i = 0) is kept in the block and in the median, as imagehash does: it is
/// 32x the mean brightness, so bit 0 is 1 for any non-black image and costs nothing in distances.
/// Weak spot (as any median pHash): when many coefficients sit within noise of the median -- a
/// mirror-symmetric image (centred shape on a flat background) or low gray contrast -- noise
/// decides those bits, and a resized copy can land 10-20 bits away (tests/data/test_phash.cpp).
uint64_t perceptual_hash(const cv::Mat& rgb);

int hamming_distance(uint64_t a, uint64_t b);

struct NearDuplicate {
  size_t a = 0;  // indices into the input, a < b
  size_t b = 0;
  int distance = 0;
};

/// All pairs at Hamming distance <= max_distance, sorted by (a, b). O(n^2) popcounts:
/// 10,000 hashes (5e7 pairs) take 0.2 s here.
std::vector<NearDuplicate> find_near_duplicates(const std::vector<uint64_t>& hashes, int max_distance = 6);

}  // namespace ls::data
