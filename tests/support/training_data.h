// The small synthetic kohya dataset the training tests share (CPU and CUDA runs train on the same
// data, so their results are comparable).
#pragma once

#include <filesystem>
#include <cstdint>
#include <string>

namespace ls::test {

/// Writes the dataset into `dir` (6 images, 2 repeats, sides 96..160 px, buckets at 64 px, batch 2,
/// seed 5, plus `reg_images` regularisation images) and returns its dataset TOML's path.
std::string write_training_dataset(const std::filesystem::path& dir, int reg_images);

/// Writes a random tiny SDXL checkpoint (configs' tiny architecture, torch seed `seed`) to `file`
/// and returns its path.
std::string write_tiny_checkpoint(const std::filesystem::path& file, int64_t seed = 3);

}  // namespace ls::test
