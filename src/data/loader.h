// From a batch plan to tensors: decode, resize to the bucket (area when shrinking, Lanczos when
// enlarging), crop (center or random), flip, and SDXL's size conditioning; or latents from the
// cache. Every random draw comes from (seed, epoch, step, slot), so a resumed run loads the
// same batches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "data/dataset.h"

namespace ls::data {

class LatentCache;

/// SDXL's micro-conditioning of one image, in SGM's convention: sizes as (height, width), the
/// crop as (top, left) pixels cut from the resized image (mirrored when flipped).
struct SizeConditioning {
  int original_height = 0, original_width = 0;
  int crop_top = 0, crop_left = 0;
  int target_height = 0, target_width = 0;
};

/// One image brought to its bucket: [3,H,W] float32 in [-1,1].
struct PreparedImage {
  torch::Tensor pixels;
  SizeConditioning size;
};
PreparedImage prepare_image(const ImageRecord& record, CropOffset crop, bool flipped);
SizeConditioning size_conditioning(const ImageRecord& record, CropOffset crop, bool flipped);

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
  std::vector<std::string> paths;
  int dataset = 0;
};

class BatchLoader {
 public:
  /// `cache` (optional) supplies latents instead of pixels; it must outlive the loader.
  BatchLoader(const std::vector<DatasetIndex>& datasets, uint64_t seed, const LatentCache* cache = nullptr);
  /// `step` is the batch's position in the epoch plan (it seeds the per-sample draws).
  Batch load(const BatchPlan& plan, int epoch, int64_t step) const;

 private:
  const std::vector<DatasetIndex>& datasets_;
  uint64_t seed_;
  const LatentCache* cache_;
};

}  // namespace ls::data
