// Two separable passes over 8-bit rows, each driven by a table of (first input, tap count,
// fixed-point weights) per output pixel, as Pillow's Resample.c builds it. The tap arithmetic
// follows Pillow's expressions operation by operation (doubles, the same order, the same
// truncations): the 8-bit result depends on which side of .5 a sum falls, so an algebraically
// equal rewrite could move a pixel by one.
#include "caption/pillow_resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace ls::caption {
// Named, not anonymous: the library compiles in unity batches, where the anonymous namespaces of
// several files become one.
namespace pillow_resize_impl {

// Pillow's PRECISION_BITS: 8 bits of result plus 2 of headroom, since normalised bicubic taps sum
// to 1 but individual taps exceed 1 or go below 0.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kBicubicSupport = 2.0;  // the kernel is zero from |x| = 2 on

// Keys' cubic convolution kernel with a = -0.5 (Catmull-Rom), in Pillow's evaluation order.
double bicubic_weight(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// One pass: output pixel i reads count[i] inputs from first[i] with weights[i * ksize + t].
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the whole source (box 0 .. in_size).
Taps bicubic_taps(int in_size, int out_size) {
  // Pillow holds the box in floats: (in1 - in0) is a float difference, the division a double one.
  const double scale = static_cast<double>(static_cast<float>(in_size) - 0.0f) / out_size;
  // Shrinking stretches the kernel over `scale` input pixels (antialiasing); enlarging does not.
  const double filterscale = std::max(scale, 1.0);
  const double support = kBicubicSupport * filterscale;
  const double inv_filterscale = 1.0 / filterscale;  // Pillow multiplies by the inverse
  Taps taps;
  taps.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(static_cast<size_t>(out_size));
  taps.count.resize(static_cast<size_t>(out_size));
  taps.weights.assign(static_cast<size_t>(out_size) * static_cast<size_t>(taps.ksize), 0);
  std::vector<double> w(static_cast<size_t>(taps.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    // (int) truncates toward zero; the + 0.5 is Pillow's rounding of the window's ends.
    const int xmin = std::max(0, static_cast<int>(center - support + 0.5));
    const int xmax = std::min(in_size, static_cast<int>(center + support + 0.5)) - xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = bicubic_weight((x + xmin - center + 0.5) * inv_filterscale);
      ww += w[x];
    }
    int32_t* k = &taps.weights[static_cast<size_t>(xx) * taps.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double normalised = ww != 0.0 ? w[x] / ww : w[x];
      const double fixed = normalised * (1 << kPrecisionBits);
      // Half away from zero, by truncating after adding +-0.5.
      k[x] = static_cast<int32_t>(normalised < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
    taps.first[xx] = xmin;
    taps.count[xx] = xmax;
  }
  return taps;
}

// Pillow's clip8: the sum carries a half (1 << 21) added up front, so the shift rounds half up;
// an arithmetic shift floors negative sums before they clip to 0.
uint8_t clip8(int64_t sum) {
  const int64_t v = sum >> kPrecisionBits;
  return static_cast<uint8_t>(std::clamp<int64_t>(v, 0, 255));
}
constexpr int64_t kHalf = int64_t{1} << (kPrecisionBits - 1);

cv::Mat horizontal_pass(const cv::Mat& in, int out_width) {
  const Taps taps = bicubic_taps(in.cols, out_width);
  const int channels = in.channels();
  cv::Mat out(in.rows, out_width, in.type());
  for (int y = 0; y < in.rows; ++y) {
    const uint8_t* src = in.ptr<uint8_t>(y);
    uint8_t* dst = out.ptr<uint8_t>(y);
    for (int xx = 0; xx < out_width; ++xx) {
      const int32_t* k = &taps.weights[static_cast<size_t>(xx) * taps.ksize];
      const uint8_t* s = src + static_cast<size_t>(taps.first[xx]) * channels;
      for (int c = 0; c < channels; ++c) {
        int64_t sum = kHalf;
        for (int t = 0; t < taps.count[xx]; ++t) sum += int64_t{s[t * channels + c]} * k[t];
        dst[xx * channels + c] = clip8(sum);
      }
    }
  }
  return out;
}

// Integer sums are exact, so accumulating whole rows gives Pillow's per-pixel sums.
cv::Mat vertical_pass(const cv::Mat& in, int out_height) {
  const Taps taps = bicubic_taps(in.rows, out_height);
  const size_t row_len = static_cast<size_t>(in.cols) * in.channels();
  cv::Mat out(out_height, in.cols, in.type());
  std::vector<int64_t> acc(row_len);
  for (int yy = 0; yy < out_height; ++yy) {
    const int32_t* k = &taps.weights[static_cast<size_t>(yy) * taps.ksize];
    std::fill(acc.begin(), acc.end(), kHalf);
    for (int t = 0; t < taps.count[yy]; ++t) {
      const uint8_t* src = in.ptr<uint8_t>(taps.first[yy] + t);
      for (size_t i = 0; i < row_len; ++i) acc[i] += int64_t{src[i]} * k[t];
    }
    uint8_t* dst = out.ptr<uint8_t>(yy);
    for (size_t i = 0; i < row_len; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

}  // namespace pillow_resize_impl

cv::Mat pillow_resize_bicubic(const cv::Mat& image, int width, int height) {
  using namespace pillow_resize_impl;
  LS_CHECK(!image.empty(), "pillow_resize_bicubic: empty input image");
  LS_CHECK(image.type() == CV_8UC1 || image.type() == CV_8UC3,
           "pillow_resize_bicubic: expected an 8-bit image with 1 or 3 channels, got OpenCV type ",
           image.type(), "; composite alpha away before resizing");
  LS_CHECK(width > 0 && height > 0, "pillow_resize_bicubic: target size must be positive, got ",
           width, "x", height);
  const int dw = image.cols - width, dh = image.rows - height;
  // Pillow's speed rule (ImagingResampleInner); it also decides which pass rounds to 8 bits first.
  const bool horizontal_first = !(dh > 0 && dh > dw * 2);
  cv::Mat out = image;
  if (horizontal_first) {
    if (width != image.cols) out = horizontal_pass(out, width);
    if (height != image.rows) out = vertical_pass(out, height);
  } else {
    if (height != image.rows) out = vertical_pass(out, height);
    if (width != image.cols) out = horizontal_pass(out, width);
  }
  return out.data == image.data ? image.clone() : out;
}

}  // namespace ls::caption
