// The dataset part of a trained LoRA's metadata, as kohya-ss/sd-scripts writes it
// (train_network.py NetworkTrainer.train, the `if use_user_config:` branch and its else;
// library/train_util.py BaseDataset.set_tag_frequency and make_buckets' bucket_info): tag counts
// per image folder, bucket counts, and either ss_datasets (with a dataset config) or kohya's
// top-level folder-mode keys (train_data_dir / reg_data_dir). A1111's LoRA dialog and model
// sites read ss_tag_frequency, ss_dataset_dirs and ss_bucket_info by these shapes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "train/train_config.h"

namespace ls::train {

/// kohya's dataset.tag_frequency: {"<image folder's base name>": {"<tag>": count}}, folders in
/// subset order (a folder name met twice shares one entry), tags in order of first appearance.
/// Each caption (as read: the caption file's first line, else the class tokens) is split at ","
/// and each piece stripped (Python str.strip) and lower-cased (str.lower); empty pieces are not
/// counted. Reg folders count too; an existing folder without images gets an empty entry.
nlohmann::ordered_json tag_frequency(const data::DatasetIndex& dataset);

/// kohya's dataset.bucket_info: null without bucketing, else {"buckets": {"<i>": {"resolution":
/// [w, h], "count": images with repeats}}, "mean_img_ar_error": mean |aspect error|}, i numbering
/// the buckets in use sorted by (w, h); the mean over the images the epoch uses (train images,
/// then the reg images balancing kept), summed as numpy does.
nlohmann::ordered_json bucket_info(const data::DatasetIndex& dataset);

/// np.mean of float64 values: numpy's pairwise sum (blocks of up to 128, 8 accumulators) / n.
double numpy_mean(const std::vector<double>& values);

/// The dataset keys: with `dataset_config`, ss_datasets (one object per dataset, its subsets
/// inside), ss_tag_frequency (merged: the first dataset naming a folder wins) and ss_dataset_dirs
/// (non-reg folders, a repeated name as "name (2)"); in folder mode ss_batch_size_per_device,
/// ss_total_batch_size (train_batch_size x world_size x gradient_accumulation_steps),
/// ss_resolution, the augmentation, caption and bucket keys, ss_dataset_dirs, ss_reg_dataset_dirs,
/// ss_tag_frequency and ss_bucket_info. JSON values as Python's json.dumps writes them.
std::map<std::string, std::string> dataset_lora_metadata(const TrainConfig& config,
                                                         const std::vector<data::DatasetIndex>& datasets,
                                                         int world_size);

}  // namespace ls::train
