// Pillow's `Image.resize((w, h), Image.BICUBIC)` for 8-bit images, reproduced to the bit: the
// WD14 taggers were trained on Pillow-resized pixels, and OpenCV's INTER_CUBIC is a different
// filter (no antialiasing when shrinking, a = -0.75). Matches python-pillow/Pillow 13.0.0
// src/libImaging/Resample.c (ImagingResample, precompute_coeffs, the 8bpc passes) and
// src/PIL/Image.py (Image.resize).
#pragma once

#include <opencv2/core.hpp>

namespace ls::caption {

/// Pillow's bicubic resize of an 8-bit image with 1 channel (mode "L") or 3 channels (mode "RGB",
/// any channel order: channels are filtered independently) to width x height. The filter is the
/// Keys cubic with a = -0.5, stretched by the scale factor when shrinking (support 2 * scale:
/// antialiased), its taps normalised per output pixel and rounded to 22-bit fixed point; the
/// passes run horizontal then vertical (vertical first when the height shrinks by more than twice
/// as many pixels as the width), a pass is skipped when its size is unchanged, and each pass
/// rounds and clips to 8 bits as Pillow does. The same size returns a copy. No box-reduce
/// pre-step: Image.resize uses one only when `reducing_gap` is passed (its default is None).
/// 4-channel images are refused: Pillow premultiplies RGBA before resizing, which is not done
/// here. Throws ls::Error for an empty image, another type or a non-positive size.
cv::Mat pillow_resize_bicubic(const cv::Mat& image, int width, int height);

}  // namespace ls::caption
