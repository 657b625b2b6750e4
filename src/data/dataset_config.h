// Dataset configuration as kohya-ss/sd-scripts defines it (library/config_util.py): a TOML file
// with [general], [[datasets]] and [[datasets.subsets]] (subset keys may be set at any of the
// three levels, the nearest wins; dataset keys at [general] or [[datasets]]), or the folder
// convention (train_data_dir / reg_data_dir holding `N_name` subfolders, N = repeats,
// name = class tokens). Unknown keys are errors naming the key: a typo must not silently
// change training.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/key_table.h"
#include "data/buckets.h"
#include "data/captions.h"
#include "data/findings.h"

namespace ls::data {

struct SubsetConfig {
  std::string image_dir;
  int num_repeats = 1;
  bool is_reg = false;
  std::string class_tokens;              // caption when an image has no caption file
  std::string caption_extension = ".txt";  // kohya's TOML default is ".caption"; the issue asks .txt
  CaptionOptions caption;
  bool flip_aug = false;
  bool random_crop = false;
  // Loss masks (kohya: the loss is multiplied by the mask, area-resized to the latent): the image's
  // alpha channel (alpha_mask), or the red channel of the image of the same name in
  // conditioning_data_dir (kohya's ControlNet-style subsets; needs masked_loss in training).
  bool alpha_mask = false;
  std::string conditioning_data_dir;
};

struct DatasetConfig {
  BucketOptions buckets;  // resolution, enable_bucket, min/max_bucket_reso, steps, no_upscale
  int batch_size = 1;
  double prior_loss_weight = 1.0;  // multiplies the loss of reg images (kohya: a training flag)
  std::vector<SubsetConfig> subsets;
};

struct DataConfig {
  std::string source;  // the TOML file or the training folder: named in messages
  std::vector<DatasetConfig> datasets;
};

/// Parses a kohya dataset TOML. Relative image_dir paths are resolved against the file's folder.
/// `defaults` supplies what the file leaves out (kohya falls back to the training arguments, e.g.
/// batch_size to --train_batch_size); its subsets are ignored.
DataConfig load_dataset_toml(const std::string& path, const DatasetConfig& defaults = {});
DataConfig parse_dataset_toml(std::string_view text, const std::string& source,
                              const std::string& base_dir, const DatasetConfig& defaults = {});

/// kohya's folder convention. `defaults` supplies everything but the subsets.
struct FolderSource {
  std::string train_dir;
  std::string reg_dir;  // optional
  DatasetConfig defaults;
  SubsetConfig subset_defaults;
};
/// Sets the default of a folder dataset that the training key `key` stands for (kohya's training
/// arguments of the same names; train_batch_size is the dataset's batch_size), through the
/// dataset's key tables. False when the dataset has no such key.
bool set_folder_default(FolderSource& source, const std::string& key, const core::KeyValue& value);

/// Folders whose name does not start with a repeat count are skipped with a finding, as kohya
/// skips them with a warning; no usable subfolder at all is an error finding.
DataConfig folder_dataset(const FolderSource& source, Findings& findings);

/// `N_name` -> (N, name); N = 0 when the name has no leading integer (kohya's rule: split at the
/// first '_', the rest, underscores kept, is the class token string).
std::pair<int, std::string> parse_repeat_folder(const std::string& name);

/// Loads a TOML file or scans a folder, whichever `path` is (`folder_defaults.train_dir` is
/// replaced by `path`; its reg_dir is refused for a TOML file).
DataConfig load_data_source(const std::string& path, const FolderSource& folder_defaults, Findings& findings);

}  // namespace ls::data
