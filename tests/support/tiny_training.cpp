#include "support/tiny_training.h"

#include "support/training_data.h"

namespace ls::test {

TinyTraining::TinyTraining(int reg_images)
    : checkpoint(write_tiny_checkpoint(dir / "tiny.safetensors")),
      dataset_toml(write_training_dataset(dir / "data", reg_images)) {}

train::TrainConfig TinyTraining::config(const std::string& output_dir) const {
  train::TrainConfig c;
  c.pretrained_model_name_or_path = checkpoint;
  c.dataset_config = dataset_toml;
  c.tokenizer = kClipVocab;
  c.output_dir = output_dir;
  c.output_name = "tiny";
  c.network_dim = 4;
  c.network_alpha = 2;
  c.learning_rate = 1e-3;
  c.seed = 5;
  c.max_train_steps = 1;
  return c;
}

}  // namespace ls::test
