// Small datasets built on the fly by the data tests: images with a known pattern, caption files.
#pragma once

#include <filesystem>
#include <fstream>
#include <algorithm>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/rng.h"
#include "io/image.h"

namespace ls::test {

/// An RGB image whose every pixel differs from its neighbours (so crops and flips are visible):
/// R = x * 7 + seed, G = y * 5 + seed, B = (x + 2y) * 3; for seed != 0, six filled shapes at
/// seed-drawn places over it, so that images of different seeds differ to a perceptual hash too.
inline cv::Mat pattern_image(int width, int height, int seed = 0) {
  cv::Mat m(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      m.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uint8_t>((x * 7 + seed) & 255), static_cast<uint8_t>((y * 5 + seed) & 255),
                                        static_cast<uint8_t>(((x + 2 * y) * 3) & 255));
  if (seed == 0) return m;
  core::Rng rng(static_cast<uint64_t>(seed), {core::purpose_id("test pattern")});
  for (int i = 0; i < 6; ++i) {
    const cv::Scalar colour(double(rng.below(256)), double(rng.below(256)), double(rng.below(256)));
    const cv::Point c(static_cast<int>(rng.below(static_cast<uint64_t>(width))),
                      static_cast<int>(rng.below(static_cast<uint64_t>(height))));
    const int r = std::max(4, static_cast<int>(rng.below(static_cast<uint64_t>(std::min(width, height) / 3 + 1))));
    if (i % 2) cv::circle(m, c, r, colour, cv::FILLED);
    else cv::rectangle(m, c - cv::Point(r, r / 2), c + cv::Point(r, r / 2), colour, cv::FILLED);
  }
  return m;
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

/// Writes dir/name (PNG unless the extension says otherwise) and, when caption is not null,
/// the caption file beside it.
inline void add_image(const std::filesystem::path& dir, const std::string& name, int width, int height,
                      const char* caption = nullptr, int seed = 0, const std::string& caption_ext = ".txt") {
  std::filesystem::create_directories(dir);
  io::write_image((dir / name).string(), pattern_image(width, height, seed));
  if (caption) write_text(dir / (std::filesystem::path(name).stem().string() + caption_ext), caption);
}

}  // namespace ls::test
