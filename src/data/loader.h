// From a batch plan to tensors: each image brought to its bucket (data/bucket_image) with its
// drawn crop and flip, or its latents from the cache; processed captions and loss weights. Every
// random draw comes from (seed, epoch, step, slot), so a resumed run loads the same batches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "data/bucket_image.h"
#include "data/dataset.h"

namespace ls::data {

class LatentCache;

/// The crop and flip of one sample; flip_aug and random_crop draw from `rng` (flip first, as kohya).
struct Augmentation {
  CropOffset crop;
  bool flipped = false;
};
Augmentation draw_augmentation(const ImageRecord& record, const SubsetConfig& subset, core::Rng& rng);

struct Batch {
  torch::Tensor pixels;   // [B,3,H,W] float32 in [-1,1]; undefined when latents come from the cache
  torch::Tensor latents;  // [B,C,H/8,W/8] from the cache; undefined otherwise
  std::vector<std::string> captions;  // processed (prefix/suffix, shuffle, dropouts)
  std::vector<SizeConditioning> sizes;
  torch::Tensor loss_weights;  // [B] float32: 1 for train images, prior_loss_weight for reg
  /// [B,1,H,W] float32 in [0,1] at image resolution when any image of the batch has a loss mask
  /// (the others' are ones, as kohya fills them); undefined otherwise.
  torch::Tensor masks;
  std::vector<std::string> paths;
  int dataset = 0;
};

class BatchLoader {
 public:
  /// `cache` (optional) supplies latents instead of pixels; it must outlive the loader.
  BatchLoader(const std::vector<DatasetIndex>& datasets, uint64_t seed, const LatentCache* cache = nullptr);
  /// `step` is the batch's position in the epoch plan and `first_slot` the position of its first
  /// image in that step (a rank's or micro-batch's share): together they seed the per-sample
  /// draws, so an image is augmented and captioned alike however the step is split.
  Batch load(const BatchPlan& plan, int epoch, int64_t step, int64_t first_slot = 0) const;

 private:
  const std::vector<DatasetIndex>& datasets_;
  uint64_t seed_;
  const LatentCache* cache_;
};

}  // namespace ls::data
