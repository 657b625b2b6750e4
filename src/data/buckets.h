// Aspect-ratio buckets: which bucket an image goes to, the size it is resized to, and where the
// bucket is cut out of it. Matches kohya-ss/sd-scripts library/model_util.py
// (make_bucket_resolutions) and library/train_util.py (BucketManager.select_bucket,
// round_to_steps, get_crop_ltrb, the trimming in trim_and_resize_if_required), number for number.
#pragma once

#include <string>
#include <vector>

#include "core/rng.h"

namespace ls::data {

struct Reso {
  int width = 0;
  int height = 0;
};
inline bool operator==(Reso a, Reso b) { return a.width == b.width && a.height == b.height; }
inline bool operator!=(Reso a, Reso b) { return !(a == b); }
/// Lexicographic on (width, height), as Python sorts tuples.
inline bool operator<(Reso a, Reso b) {
  return a.width != b.width ? a.width < b.width : a.height < b.height;
}

/// kohya dataset keys of the same names (train_util.DreamBoothDataset / BucketManager).
/// "WxH", as buckets are named in reports and cache keys.
std::string reso_text(Reso r);

struct BucketOptions {
  Reso resolution{1024, 1024};  // max area = width * height
  bool enable_bucket = true;    // false: one bucket = resolution; images are resized to cover it
  int min_bucket_reso = 256;
  int max_bucket_reso = 2048;
  int bucket_reso_steps = 64;
  bool bucket_no_upscale = false;  // true: buckets come from the image sizes, never enlarged
};

/// kohya model_util.make_bucket_resolutions: the square of side floor(sqrt(area) / steps) * steps,
/// plus for every width w = min_size, min_size + steps, ... <= max_size the pairs (w, h) and (h, w)
/// with h = min(max_size, floor(area / w / steps) * steps) when h >= min_size; unique, sorted.
std::vector<Reso> make_bucket_resolutions(Reso max_reso, int min_size, int max_size, int divisible);

struct BucketChoice {
  Reso bucket;          // the training size (a multiple of the steps when bucketing)
  Reso resized;         // the image is resized to this, then trimmed to `bucket` (resized >= bucket)
  double ar_error = 0;  // bucket aspect ratio - image aspect ratio (kohya's mean_img_ar_error input)
};

class BucketSelector {
 public:
  /// Validates the options (ls::Error naming the option and the fix).
  explicit BucketSelector(const BucketOptions& options);

  /// kohya BucketManager.select_bucket. Upscale path: the image's own size when it is a
  /// predefined bucket, else the first bucket (in sorted order) with the least |aspect error|;
  /// the image is scaled to cover it. bucket_no_upscale: images larger than the area are shrunk
  /// (round_to_steps on the side that keeps the aspect best), the bucket is the size floored to
  /// the steps. enable_bucket = false: the single bucket `resolution`, covered.
  BucketChoice select(int image_width, int image_height) const;

  /// The sorted buckets of the upscale path; {resolution} without bucketing; empty with
  /// bucket_no_upscale (buckets are then made per image).
  const std::vector<Reso>& predefined() const { return predefined_; }
  const BucketOptions& options() const { return options_; }

 private:
  BucketChoice select_predefined(int image_width, int image_height) const;
  BucketChoice select_no_upscale(int image_width, int image_height) const;

  BucketOptions options_;
  std::vector<Reso> predefined_;
  std::vector<double> predefined_ratios_;  // width / height of each predefined bucket
};

struct CropOffset {
  int left = 0;
  int top = 0;
};
/// Where the bucket is cut out of the resized image (kohya trim_and_resize_if_required): per axis
/// trim = resized - bucket; centre: trim / 2, random: rng.range(0, trim), the width axis drawn
/// first. As in kohya, nothing is drawn for an axis without trim.
CropOffset choose_crop(Reso resized, Reso bucket, bool random_crop, core::Rng& rng);

/// kohya BucketManager.get_crop_ltrb: the crop box that train_util reports to SDXL's
/// crop_top_left conditioning. It is NOT the trim of choose_crop: kohya fits the original image
/// inside the bucket and centres it (Stability AI's preprocessing), in floating point.
struct CropLtrb {
  double left = 0, top = 0, right = 0, bottom = 0;
};
CropLtrb kohya_crop_ltrb(Reso bucket, Reso original_size);

}  // namespace ls::data
