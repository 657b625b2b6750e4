// Aspect-ratio buckets, reproducing kohya-ss/sd-scripts library/model_util.py
// (make_bucket_resolutions) and library/train_util.py (BucketManager, trim_and_resize_if_required).
// Python's int(x + 0.5) truncation, float floor division and numpy's first-minimum argmin are
// kept as they are, because they decide which bucket an image lands in.
#include "data/buckets.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>

#include "core/error.h"

namespace ls::data {

std::string reso_text(Reso r) { return std::to_string(r.width) + "x" + std::to_string(r.height); }
namespace {

// CPython's float // for positive operands (float_divmod): the exact floor of the true quotient,
// which floor(a / b) misses when a / b rounds up to an integer.
double py_floordiv(double a, double b) {
  const double mod = std::fmod(a, b);
  const double div = (a - mod) / b;
  double floordiv = std::floor(div);
  if (div - floordiv > 0.5) floordiv += 1.0;
  return floordiv;
}

// Python's int(x + 0.5) for the non-negative sizes it is used on (truncation, not rounding).
int round_half_up(double x) { return static_cast<int>(x + 0.5); }

// kohya BucketManager.round_to_steps: round to an integer, then floor to the steps.
int round_to_steps(double x, int steps) {
  const int rounded = round_half_up(x);
  return rounded - rounded % steps;
}

void check_options(const BucketOptions& o) {
  const Reso r = o.resolution;
  LS_CHECK(r.width > 0 && r.height > 0, "dataset: resolution must be positive, got ", r.width, "x",
           r.height, "; use e.g. resolution = 1024 for SDXL");
  if (!o.enable_bucket) return;  // kohya ignores the bucket options then
  const int steps = o.bucket_reso_steps;
  LS_CHECK(steps > 0, "dataset: bucket_reso_steps must be > 0, got ", steps,
           "; use 64 (the default; SDXL needs a multiple of 8)");
  if (o.bucket_no_upscale) return;  // kohya: min/max are ignored, buckets come from image sizes
  const int lo = o.min_bucket_reso, hi = o.max_bucket_reso;
  LS_CHECK(lo > 0, "dataset: min_bucket_reso must be > 0, got ", lo, "; use e.g. 256");
  LS_CHECK(lo % steps == 0, "dataset: min_bucket_reso ", lo, " is not a multiple of bucket_reso_steps ",
           steps, "; use ", lo - lo % steps, " (kohya rounds it down to that)");
  LS_CHECK(hi % steps == 0, "dataset: max_bucket_reso ", hi, " is not a multiple of bucket_reso_steps ",
           steps, "; use ", hi + steps - hi % steps, " (kohya rounds it up to that)");
  LS_CHECK(lo <= hi, "dataset: min_bucket_reso ", lo, " is larger than max_bucket_reso ", hi,
           "; lower min_bucket_reso or raise max_bucket_reso");
  LS_CHECK(std::min(r.width, r.height) >= lo, "dataset: min_bucket_reso ", lo,
           " is larger than the resolution's short side ", std::min(r.width, r.height),
           "; lower min_bucket_reso or raise resolution");
  LS_CHECK(std::max(r.width, r.height) <= hi, "dataset: max_bucket_reso ", hi,
           " is smaller than the resolution's long side ", std::max(r.width, r.height),
           "; raise max_bucket_reso or lower resolution");
}

}  // namespace

std::vector<Reso> make_bucket_resolutions(Reso max_reso, int min_size, int max_size, int divisible) {
  LS_CHECK(divisible > 0 && min_size > 0, "make_bucket_resolutions: min_size (", min_size,
           ") and divisible (", divisible, ") must be > 0");
  const int64_t max_area = static_cast<int64_t>(max_reso.width) * max_reso.height;
  std::set<Reso> resos;
  const int square =
      static_cast<int>(py_floordiv(std::sqrt(static_cast<double>(max_area)), divisible)) * divisible;
  resos.insert({square, square});
  for (int width = min_size; width <= max_size; width += divisible) {
    const int64_t fit = (max_area / width) / divisible * divisible;
    const int height = static_cast<int>(std::min<int64_t>(max_size, fit));
    if (height >= min_size) {
      resos.insert({width, height});
      resos.insert({height, width});
    }
  }
  return {resos.begin(), resos.end()};
}

BucketSelector::BucketSelector(const BucketOptions& options) : options_(options) {
  check_options(options_);
  if (!options_.enable_bucket) {
    predefined_ = {options_.resolution};
  } else if (!options_.bucket_no_upscale) {
    predefined_ = make_bucket_resolutions(options_.resolution, options_.min_bucket_reso,
                                          options_.max_bucket_reso, options_.bucket_reso_steps);
  }
  predefined_ratios_.reserve(predefined_.size());
  for (Reso r : predefined_) predefined_ratios_.push_back(static_cast<double>(r.width) / r.height);
}

BucketChoice BucketSelector::select(int image_width, int image_height) const {
  LS_CHECK(image_width > 0 && image_height > 0, "bucket selection: image size ", image_width, "x",
           image_height, " is empty; remove the broken image");
  if (options_.enable_bucket && options_.bucket_no_upscale) {
    return select_no_upscale(image_width, image_height);
  }
  return select_predefined(image_width, image_height);
}

BucketChoice BucketSelector::select_predefined(int image_width, int image_height) const {
  const double aspect = static_cast<double>(image_width) / image_height;
  const Reso image{image_width, image_height};
  // kohya prefers the image's own size when it is a bucket, before comparing aspect ratios
  // (two buckets may share one ratio).
  size_t best = 0;
  if (std::binary_search(predefined_.begin(), predefined_.end(), image)) {
    best = static_cast<size_t>(std::lower_bound(predefined_.begin(), predefined_.end(), image) -
                               predefined_.begin());
  } else {
    double best_error = std::abs(predefined_ratios_[0] - aspect);
    for (size_t i = 1; i < predefined_.size(); ++i) {  // strict <: the first minimum, as argmin
      const double error = std::abs(predefined_ratios_[i] - aspect);
      if (error < best_error) {
        best_error = error;
        best = i;
      }
    }
  }
  BucketChoice choice;
  choice.bucket = predefined_[best];
  const double bucket_aspect = predefined_ratios_[best];
  // Scale so that the image covers the bucket: match the axis that would otherwise fall short.
  const double scale = aspect > bucket_aspect
                           ? static_cast<double>(choice.bucket.height) / image_height
                           : static_cast<double>(choice.bucket.width) / image_width;
  choice.resized = {round_half_up(image_width * scale), round_half_up(image_height * scale)};
  choice.ar_error = bucket_aspect - aspect;
  return choice;
}

BucketChoice BucketSelector::select_no_upscale(int image_width, int image_height) const {
  const int steps = options_.bucket_reso_steps;
  const double aspect = static_cast<double>(image_width) / image_height;
  const int64_t max_area =
      static_cast<int64_t>(options_.resolution.width) * options_.resolution.height;
  BucketChoice choice;
  choice.resized = {image_width, image_height};
  if (static_cast<int64_t>(image_width) * image_height > max_area) {
    // Shrink to the area keeping the aspect; round either the width or the height to the steps,
    // whichever leaves the smaller aspect error.
    const double width = std::sqrt(static_cast<double>(max_area) * aspect);
    const double height = static_cast<double>(max_area) / width;
    const int w_rounded = round_to_steps(width, steps);
    const int h_for_w = round_to_steps(w_rounded / aspect, steps);
    const int h_rounded = round_to_steps(height, steps);
    const int w_for_h = round_to_steps(h_rounded * aspect, steps);
    // kohya divides by both heights (ZeroDivisionError for a very wide image).
    LS_CHECK(h_for_w > 0 && h_rounded > 0, "bucket selection: image ", image_width, "x", image_height,
             " is too elongated for bucket_no_upscale (its short side would be under ", steps,
             " px); crop it or turn bucket_no_upscale off");
    const double aspect_w = static_cast<double>(w_rounded) / h_for_w;
    const double aspect_h = static_cast<double>(w_for_h) / h_rounded;
    if (std::abs(aspect_w - aspect) < std::abs(aspect_h - aspect)) {
      choice.resized = {w_rounded, round_half_up(w_rounded / aspect)};
    } else {
      choice.resized = {round_half_up(h_rounded * aspect), h_rounded};
    }
  }
  // The bucket is the resized size floored to the steps: cropped, never padded.
  choice.bucket = {choice.resized.width - choice.resized.width % steps,
                   choice.resized.height - choice.resized.height % steps};
  LS_CHECK(choice.bucket.width > 0 && choice.bucket.height > 0, "bucket selection: image ", image_width,
           "x", image_height, " has a side under bucket_reso_steps (", steps,
           " px); remove or enlarge it, or turn bucket_no_upscale off");
  choice.ar_error = static_cast<double>(choice.bucket.width) / choice.bucket.height - aspect;
  return choice;
}

CropOffset choose_crop(Reso resized, Reso bucket, bool random_crop, core::Rng& rng) {
  const int trim_w = resized.width - bucket.width;
  const int trim_h = resized.height - bucket.height;
  LS_CHECK(trim_w >= 0 && trim_h >= 0, "choose_crop: resized size ", resized.width, "x", resized.height,
           " is smaller than the bucket ", bucket.width, "x", bucket.height);
  auto offset = [&](int trim) {
    if (trim == 0) return 0;  // kohya only trims (and draws) when the image is larger
    return random_crop ? static_cast<int>(rng.range(0, trim)) : trim / 2;
  };
  CropOffset crop;
  crop.left = offset(trim_w);  // width first: kohya trims the columns before the rows
  crop.top = offset(trim_h);
  return crop;
}

CropLtrb kohya_crop_ltrb(Reso bucket, Reso original_size) {
  LS_CHECK(bucket.height > 0 && original_size.width > 0 && original_size.height > 0,
           "kohya_crop_ltrb: empty size");
  const double bucket_aspect = static_cast<double>(bucket.width) / bucket.height;
  const double image_aspect = static_cast<double>(original_size.width) / original_size.height;
  double width = bucket.width, height = bucket.height;
  if (bucket_aspect > image_aspect) {
    width = bucket.height * image_aspect;  // bucket is wider: match the heights
  } else {
    height = bucket.width / image_aspect;
  }
  CropLtrb box;
  box.left = std::floor((bucket.width - width) / 2.0);  // Python float // 2 (exact halving)
  box.top = std::floor((bucket.height - height) / 2.0);
  box.right = box.left + width;
  box.bottom = box.top + height;
  return box;
}

}  // namespace ls::data
