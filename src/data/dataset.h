// The dataset index (one entry per image: caption, size, content hash, bucket, repeats after
// regularization balancing) and the epoch plan (seeded order of same-bucket batches), as
// kohya-ss/sd-scripts' DreamBoothDataset + BucketManager build them (library/train_util.py).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/buckets.h"
#include "data/dataset_config.h"
#include "data/findings.h"
#include "io/image.h"

namespace ls::data {

struct ImageRecord {
  std::string path;
  int subset = 0;            // index into DatasetConfig::subsets
  bool is_reg = false;
  int num_repeats = 0;       // after regularization balancing; 0 = a reg image this run does not use
  std::string caption;       // the caption file's first line, or the class tokens without one
  bool caption_file = false;  // the caption came from a file
  io::ImageSize size;        // displayed size (EXIF orientation applied)
  std::string content_hash;  // SHA-256 of the file bytes: cache keys follow edits, not timestamps
  BucketChoice bucket;
  /// The loss mask: none, the alpha channel (subset alpha_mask) or a mask image (the red channel of
  /// the same-named image in conditioning_data_dir, of the image's size).
  enum class Mask { kNone, kAlpha, kImage } mask = Mask::kNone;
  std::string mask_path, mask_hash;  // kImage: the mask image and the SHA-256 of its bytes
};

struct DatasetIndex {
  DatasetConfig config;
  std::vector<ImageRecord> images;  // subsets in config order, files sorted by name
  int64_t train_images_with_repeats = 0;
  int64_t reg_images_with_repeats = 0;  // before balancing (what the folders offer)
};

/// The image files of a folder (png, jpg, jpeg, webp, bmp; any case), sorted, not recursive.
/// Entries that cannot be examined (dangling links, link loops) are findings, not files.
std::vector<std::string> list_image_files(const std::string& dir, Findings& findings);

struct ScanOptions {
  /// Decode every image fully (not only its header), so truncated data is found now rather than
  /// mid-run; `on_decoded` then sees each usable image (dataset check hashes it perceptually).
  bool decode = false;
  std::function<void(const ImageRecord&, const cv::Mat& rgb)> on_decoded;
  bool show_progress = false;  // a progress line per subset
};

/// Scans every subset: reads each image's header and bytes (hash), its caption, picks its bucket,
/// then balances the reg images against the train images as kohya does (the first reg images
/// are registered with their repeats until they cover the train count; further rounds add one
/// repeat each). Problems become findings; a file with an error finding is left out.
DatasetIndex index_dataset(const DatasetConfig& config, Findings& findings, const ScanOptions& scan = {});
std::vector<DatasetIndex> index_datasets(const DataConfig& config, Findings& findings, const ScanOptions& scan = {});

/// One optimizer step's worth of images, all from one bucket of one dataset (split into the
/// micro-batches of the ranks and of gradient accumulation by the trainer).
struct BatchPlan {
  int dataset = 0;
  Reso bucket;
  std::vector<int> images;  // indices into DatasetIndex::images (repeats appear several times)
};

/// The optimizer steps of one epoch: each bucket holds every image num_repeats times, shuffled,
/// cut into steps of the dataset's batch_size x `batches_per_step` images (the last one may be
/// short), and all steps of all datasets shuffled. `batches_per_step` is world size x gradient
/// accumulation, so a step holds the same images however it is split into ranks and micro-batches
/// (one process with batch 4 = two ranks with batch 2 = two ranks with batch 1 and accumulation 2).
/// A pure function of (seed, epoch, images per step): resuming replays it exactly.
std::vector<BatchPlan> epoch_plan(const std::vector<DatasetIndex>& datasets, uint64_t seed, int epoch,
                                  int batches_per_step = 1);

/// Steps per epoch = sum over buckets of ceil(images with repeats / (batch_size x batches_per_step)).
int64_t steps_per_epoch(const std::vector<DatasetIndex>& datasets, int batches_per_step = 1);
int64_t steps_per_epoch(const DatasetIndex& dataset, int batch_size);

}  // namespace ls::data
