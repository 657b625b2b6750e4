#include "support/training_data.h"

#include "data/synthetic.h"

namespace ls::test {

std::string write_training_dataset(const std::filesystem::path& dir, int reg_images) {
  data::SyntheticOptions o;
  o.images = 6;
  o.reg_images = reg_images;
  o.repeats = 2;
  o.min_side = 96;
  o.max_side = 160;
  o.resolution = 64;
  o.batch_size = 2;
  o.seed = 5;
  return data::make_synthetic_dataset(dir.string(), o).config_toml;
}

}  // namespace ls::test
