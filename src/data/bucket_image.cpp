// One image brought to its bucket (see bucket_image.h).
#include "data/bucket_image.h"

#include <opencv2/core.hpp>

#include "core/error.h"
#include "io/image.h"

namespace ls::data {

SizeConditioning size_conditioning(const ImageRecord& record, CropOffset crop, bool flipped) {
  const Reso& resized = record.bucket.resized;
  const Reso& bucket = record.bucket.bucket;
  SizeConditioning s;
  s.original_height = record.size.height;
  s.original_width = record.size.width;
  s.crop_top = crop.top;
  // Mirroring the crop keeps "pixels cut on the left" true of the image the model sees.
  s.crop_left = flipped ? resized.width - bucket.width - crop.left : crop.left;
  s.target_height = bucket.height;
  s.target_width = bucket.width;
  return s;
}

namespace {

// Scanned size -> resized -> cropped to the bucket -> mirrored: the one geometry of pixels and mask.
cv::Mat bucket_image_fit(const cv::Mat& image, const ImageRecord& record, CropOffset crop, bool flipped,
                         const std::string& path) {
  LS_CHECK(image.cols == record.size.width && image.rows == record.size.height, path, ": is ", image.cols, "x",
           image.rows, " but was ", record.size.width, "x", record.size.height,
           " when the dataset was scanned; it changed during the run, restart to rescan");
  const Reso& resized = record.bucket.resized;
  const Reso& bucket = record.bucket.bucket;
  const cv::Mat scaled = (resized.width == image.cols && resized.height == image.rows)
                             ? image
                             : io::resize_image(image, resized.width, resized.height);
  LS_CHECK(crop.left >= 0 && crop.top >= 0 && crop.left + bucket.width <= scaled.cols &&
               crop.top + bucket.height <= scaled.rows,
           path, ": internal error, crop ", crop.left, ",", crop.top, " of ", bucket.width, "x", bucket.height,
           " does not fit the resized ", scaled.cols, "x", scaled.rows);
  cv::Mat cut = scaled(cv::Rect(crop.left, crop.top, bucket.width, bucket.height));
  cv::Mat out;
  if (flipped) cv::flip(cut, out, 1);
  else out = cut;
  return out;
}

// uint8 [H, W] -> [1, H, W] float32 in [0, 1] (kohya: alpha / 255, or a mask image's red channel
// read as x / 127.5 - 1 and mapped back by / 2 + 0.5).
torch::Tensor bucket_image_mask_tensor(const cv::Mat& gray) {
  cv::Mat c = gray.isContinuous() ? gray : gray.clone();
  return torch::from_blob(c.data, {1, c.rows, c.cols}, torch::kUInt8).to(torch::kFloat32) / 255.0;
}

}  // namespace

PreparedImage prepare_image(const ImageRecord& record, CropOffset crop, bool flipped) {
  const io::DecodedImage decoded = io::read_image(record.path, record.mask == ImageRecord::Mask::kAlpha);
  PreparedImage out{io::image_to_tensor(bucket_image_fit(decoded.rgb, record, crop, flipped, record.path)),
                    size_conditioning(record, crop, flipped), {}};
  if (record.mask == ImageRecord::Mask::kAlpha) {
    out.mask = bucket_image_mask_tensor(bucket_image_fit(decoded.alpha, record, crop, flipped, record.path));
  } else if (record.mask == ImageRecord::Mask::kImage) {
    const cv::Mat rgb = io::read_image_rgb(record.mask_path);
    cv::Mat red;
    cv::extractChannel(rgb, red, 0);  // RGB order
    out.mask = bucket_image_mask_tensor(bucket_image_fit(red, record, crop, flipped, record.mask_path));
  }
  return out;
}

}  // namespace ls::data
