// What is refused before an outside image reaches a decoder we do not own (OpenCV's codecs, libpng,
// libjpeg, libwebp, zlib): a declared pixel count over the limit (decompression bombs), a declared
// size the coded data is too small to hold, and PNG chunks whose CRC does not match. The decoders
// allocate the whole output from the header before reading a pixel, so these checks come first.
// The limit is Pillow's (PIL/Image.py MAX_IMAGE_PIXELS, DecompressionBombError above twice it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/image_header.h"

namespace ls::io {

/// Pillow refuses images over 2 x Image.MAX_IMAGE_PIXELS = 2 x 89,478,485 pixels
/// (DecompressionBombError): a kohya user's datasets never hold larger ones, and decoding one
/// costs at most ~0.7 GB (RGBA) or ~1.4 GB (16-bit RGBA) here. OpenCV's own limit
/// (OPENCV_IO_MAX_IMAGE_PIXELS, default 2^30) is also checked before it allocates, but at 6x this.
constexpr uint64_t kDefaultMaxImagePixels = 178'956'970;

/// The limit in force: LORASTUDIO_MAX_IMAGE_PIXELS when set (a positive integer), else the default.
/// A bad value is an ls::Error naming the variable.
uint64_t max_image_pixels();

/// Throws ls::Error "<name>: declares WxH = N pixels, over the limit of L ..." when the header's
/// declared size exceeds max_image_pixels(). Headers without a size (JPEG DNL) pass.
void check_pixel_limit(const ImageHeader& header, const std::string& name);

/// For a header parsed with check_complete from `data`: the pixel limit, then coded data smaller
/// than any valid encoder writes for the declared size, then (PNG) every chunk's CRC-32. Throws
/// ls::Error naming the file; the structure itself (header.problem) is the caller's check.
void check_before_decode(const ImageHeader& header, const uint8_t* data, size_t size, const std::string& name);

}  // namespace ls::io
