// The WD14 v3 taggers' input, the preprocessing of their author's wd-tagger Space with timm's
// ToTensor + Normalize (alpha over white, centred white square, Pillow bicubic to the model size,
// RGB -> BGR), computed as Pillow 13.0.0 does it (src/libImaging/AlphaComposite.c, Resample.c;
// src/PIL/Image.py paste). The pinned reference is reference_pixels() in
// tests/fixtures/tagger/make_fixtures.py.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

namespace ls::caption {

/// What the model's pretrained_cfg says about its input: square side, and mean / std in RGB
/// order (applied before the channels are flipped to BGR). WD14 v3: 448, 0.5, 0.5.
struct PixelSpec {
  int size = 448;
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f};
  std::array<float, 3> std{0.5f, 0.5f, 0.5f};
};

/// Encoded image bytes -> float32 CPU tensor [1, 3, size, size], channels B, G, R, each
/// (x / 255 - mean) / std. Decoding is io::decode_image_rgb's (PNG/JPEG/WebP/BMP, EXIF orientation
/// applied, alpha composited on white): for 8-bit alpha its rounding of c * a / 255 + 255 - a
/// equals Pillow's `Image.new("RGBA", size, white).alpha_composite(image)` (AlphaComposite.c's
/// shift arithmetic) on all 65536 (value, alpha) pairs, which the tests check. Throws ls::Error
/// naming `name_for_errors` on bad data. Deliberate differences from the reference: it opens
/// images without ImageOps.exif_transpose, so a rotated photo reaches its model sideways, where
/// here it is tagged as displayed (as training reads it); and for 16-bit files Pillow keeps the
/// high byte of RGB(A) and clips 16-bit gray at 255 (nearly all white), where io rounds
/// v * 255 / 65535 (within one level of the former).
at::Tensor tagger_pixels(const std::vector<uint8_t>& bytes, const std::string& name_for_errors,
                         const PixelSpec& spec);
at::Tensor tagger_pixels_from_file(const std::string& path, const PixelSpec& spec);

/// The steps after decoding, on 8-bit R,G,B (CV_8UC3, alpha already over white): pad to a centred
/// white square (offsets (side - w) / 2, (side - h) / 2, as Image.paste), Pillow bicubic to
/// size x size when the side differs, then the float conversion above.
at::Tensor tagger_pixels_from_rgb(const cv::Mat& rgb, const PixelSpec& spec);

}  // namespace ls::caption
