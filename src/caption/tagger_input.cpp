// Decode -> centred white square -> Pillow bicubic -> normalised BGR floats. The 8-bit steps
// repeat Pillow's integer arithmetic and the float step numpy's and torch's float32 operations
// ((float)x / 255, then - mean, then / std, each rounded once), so the tensor equals the
// reference's bit for bit whenever the decoders agree.
#include "caption/tagger_input.h"

#include <algorithm>

#include <torch/torch.h>

#include "caption/pillow_resize.h"
#include "core/error.h"
#include "io/image.h"

namespace ls::caption {
// Named, not anonymous: the library compiles in unity batches (see pillow_resize.cpp).
namespace tagger_input_impl {

// Image.new("RGB", (side, side), white).paste(image, ((side - w) // 2, (side - h) // 2)).
cv::Mat pad_to_white_square(const cv::Mat& rgb) {
  const int side = std::max(rgb.cols, rgb.rows);
  if (rgb.cols == side && rgb.rows == side) return rgb;
  cv::Mat square(side, side, CV_8UC3, cv::Scalar(255, 255, 255));
  rgb.copyTo(square(cv::Rect((side - rgb.cols) / 2, (side - rgb.rows) / 2, rgb.cols, rgb.rows)));
  return square;
}

void check_spec(const PixelSpec& spec) {
  LS_CHECK(spec.size > 0, "tagger input: the model size must be positive, got ", spec.size,
           "; check the tagger's config.json (pretrained_cfg.input_size)");
  for (int c = 0; c < 3; ++c)
    LS_CHECK(spec.std[c] != 0.0f, "tagger input: std[", c,
             "] is 0; check the tagger's config.json (pretrained_cfg.std)");
}

}  // namespace tagger_input_impl

at::Tensor tagger_pixels_from_rgb(const cv::Mat& rgb, const PixelSpec& spec) {
  tagger_input_impl::check_spec(spec);
  LS_CHECK(rgb.type() == CV_8UC3 && !rgb.empty(),
           "tagger input: expected a non-empty 8-bit RGB image (CV_8UC3), got type ", rgb.type());
  cv::Mat square = tagger_input_impl::pad_to_white_square(rgb);
  if (square.cols != spec.size) square = pillow_resize_bicubic(square, spec.size, spec.size);
  // One table per channel: 256 values cover every pixel.
  float table[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v)
      table[c][v] = (static_cast<float>(v) / 255.0f - spec.mean[c]) / spec.std[c];
  const int64_t plane = int64_t{spec.size} * spec.size;
  at::Tensor out = torch::empty({1, 3, spec.size, spec.size}, torch::kFloat32);  // [1,3,S,S] B,G,R
  float* data = out.data_ptr<float>();
  for (int y = 0; y < spec.size; ++y) {
    const uint8_t* src = square.ptr<uint8_t>(y);
    for (int x = 0; x < spec.size; ++x, src += 3) {
      const int64_t at = int64_t{y} * spec.size + x;
      for (int c = 0; c < 3; ++c) data[(2 - c) * plane + at] = table[c][src[c]];  // R,G,B -> B,G,R
    }
  }
  return out;
}

at::Tensor tagger_pixels(const std::vector<uint8_t>& bytes, const std::string& name_for_errors,
                         const PixelSpec& spec) {
  return tagger_pixels_from_rgb(io::decode_image_rgb(bytes, name_for_errors), spec);
}

at::Tensor tagger_pixels_from_file(const std::string& path, const PixelSpec& spec) {
  return tagger_pixels_from_rgb(io::read_image_rgb(path), spec);
}

}  // namespace ls::caption
