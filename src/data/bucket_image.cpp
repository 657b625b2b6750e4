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

PreparedImage prepare_image(const ImageRecord& record, CropOffset crop, bool flipped) {
  const cv::Mat rgb = io::read_image_rgb(record.path);
  LS_CHECK(rgb.cols == record.size.width && rgb.rows == record.size.height, record.path, ": is ", rgb.cols, "x",
           rgb.rows, " but was ", record.size.width, "x", record.size.height,
           " when the dataset was scanned; it changed during the run, restart to rescan");
  const Reso& resized = record.bucket.resized;
  const Reso& bucket = record.bucket.bucket;
  const cv::Mat scaled = (resized.width == rgb.cols && resized.height == rgb.rows)
                             ? rgb
                             : io::resize_image(rgb, resized.width, resized.height);
  LS_CHECK(crop.left >= 0 && crop.top >= 0 && crop.left + bucket.width <= scaled.cols &&
               crop.top + bucket.height <= scaled.rows,
           record.path, ": internal error, crop ", crop.left, ",", crop.top, " of ", bucket.width, "x", bucket.height,
           " does not fit the resized ", scaled.cols, "x", scaled.rows);
  cv::Mat cut = scaled(cv::Rect(crop.left, crop.top, bucket.width, bucket.height));
  cv::Mat out;
  if (flipped) cv::flip(cut, out, 1);
  else out = cut;
  return {io::image_to_tensor(out), size_conditioning(record, crop, flipped)};
}

}  // namespace ls::data
