// The tiny SDXL-shaped checkpoint and the synthetic dataset a training test runs on, written once
// per suite, and the small training config those tests start from.
#pragma once

#include <string>

#include "support/support.h"
#include "train/train_config.h"

namespace ls::test {

struct TinyTraining {
  /// Writes tiny.safetensors (write_tiny_checkpoint) and the dataset (write_training_dataset with
  /// `reg_images`) into a fresh folder.
  explicit TinyTraining(int reg_images = 0);
  /// One step at rank 4, alpha 2, lr 1e-3, seed 5 into `output_dir` (output_name "tiny").
  train::TrainConfig config(const std::string& output_dir) const;

  TempDir dir;
  std::string checkpoint, dataset_toml;
};

}  // namespace ls::test
