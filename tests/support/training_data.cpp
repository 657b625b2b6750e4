#include "support/training_data.h"

#include <torch/torch.h>

#include "data/synthetic.h"
#include "models/checkpoint.h"
#include "models/sdxl_model.h"

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

std::string write_tiny_checkpoint(const std::filesystem::path& file, int64_t seed) {
  torch::manual_seed(seed);
  models::SdxlModel m = models::SdxlModel::create(models::SdxlConfig::tiny(), models::Components::all());
  models::save_sdxl_checkpoint(file.string(), m, std::nullopt);
  return file.string();
}

}  // namespace ls::test
