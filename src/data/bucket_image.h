// One image brought to its bucket: decoded, resized (area when shrinking, Lanczos when enlarging),
// cropped and flipped, with SDXL's size conditioning. Shared by the batch loader and the latent
// cache (which encodes the same pixels).
#pragma once

#include <torch/torch.h>

#include "data/dataset.h"

namespace ls::data {

/// SDXL's micro-conditioning of one image, in SGM's convention: sizes as (height, width), the
/// crop as (top, left) pixels cut from the resized image (mirrored when flipped).
struct SizeConditioning {
  int original_height = 0, original_width = 0;
  int crop_top = 0, crop_left = 0;
  int target_height = 0, target_width = 0;
};

/// One image brought to its bucket: [3,H,W] float32 in [-1,1]; with a loss mask (the record's
/// alpha channel or mask image) the mask [1,H,W] float32 in [0,1], resized, cropped and flipped
/// exactly as the pixels (kohya resizes the RGBA array as one; its mask images always take a
/// centred crop, which is the image's own unless random_crop).
struct PreparedImage {
  torch::Tensor pixels;
  SizeConditioning size;
  torch::Tensor mask;  // undefined without a mask
};
PreparedImage prepare_image(const ImageRecord& record, CropOffset crop, bool flipped);
SizeConditioning size_conditioning(const ImageRecord& record, CropOffset crop, bool flipped);

}  // namespace ls::data
