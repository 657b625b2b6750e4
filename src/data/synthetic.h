// A synthetic kohya dataset (one coloured shape per image, captions that name what is drawn)
// for tests, benches and the quickstart: DreamBooth-style folders "<repeats>_<class tokens>"
// (kohya-ss/sd-scripts library/train_util.py, DreamBoothDataset) plus the matching dataset TOML
// (library/config_util.py: [general], [[datasets]], [[datasets.subsets]]).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace ls::data {

struct SyntheticOptions {
  int images = 12;
  int reg_images = 0;  // reg images go in a separate parent folder
  int repeats = 10;
  int reg_repeats = 1;
  std::string class_tokens = "lsshape";  // folder "10_lsshape", captions start with it
  int min_side = 320;                    // sides drawn per image: portrait, landscape and square
  int max_side = 640;
  std::string caption_extension = ".txt";
  std::string format = "png";  // png | jpg | webp (lossless)
  int resolution = 512;        // written into the TOML
  int batch_size = 2;
  uint64_t seed = 0;
};

/// What one image shows; the caption is written from these words.
struct SyntheticImage {
  std::string image_path;  // absolute; empty until written
  std::string caption_path;
  std::string caption;  // "lsshape, red circle, large, blue background, centered"
  bool is_reg = false;
  int width = 0;
  int height = 0;
  std::string shape;     // circle, square, triangle, star, ring, cross
  std::string color;     // red, green, blue, yellow, purple, orange, white, black
  std::array<uint8_t, 3> rgb{};  // the shape's colour
  std::string size;      // small, medium, large
  std::string position;  // centered, top left, top right, bottom left, bottom right
  std::string background;  // "blue" or "blue and white gradient"
  std::array<uint8_t, 3> background_from{};  // left/top colour (== background_to when solid)
  std::array<uint8_t, 3> background_to{};
  bool gradient_vertical = false;
  int center_x = 0;
  int center_y = 0;
  int radius = 0;  // of the circle the shape is inscribed in
  /// A pixel inside the shape that is painted exactly `rgb` (the centre; on the band for a ring).
  int probe_x = 0;
  int probe_y = 0;
};

struct SyntheticDataset {
  std::string train_dir;  // OUT/img/<repeats>_<class>
  std::string reg_dir;    // OUT/reg/<reg_repeats>_<class>, empty without reg images
  std::string config_toml;
  std::vector<std::string> images;     // train images then reg images
  std::vector<SyntheticImage> items;   // parallel to images
};

/// Image `index` of the train (or reg) set: a pure function of (options, index, is_reg).
SyntheticImage describe_synthetic_image(const SyntheticOptions& options, int index, bool is_reg);
/// Draws it: CV_8UC3 RGB, anti-aliased.
cv::Mat render_synthetic_image(const SyntheticImage& image);

/// Writes OUT/img/<repeats>_<class>/0000.<format> + 0000<caption_extension> ...,
/// OUT/reg/<reg_repeats>_<class>/... when reg_images > 0, and OUT/dataset.toml describing the
/// same subsets (absolute paths). Deterministic for a seed; every file is written atomically.
/// Refuses (ls::Error) an OUT/img or OUT/reg holding files or folders it would not write, so a
/// re-run with other options cannot leave a mixed dataset behind.
SyntheticDataset make_synthetic_dataset(const std::string& out_dir, const SyntheticOptions& options);

}  // namespace ls::data
