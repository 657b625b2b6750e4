// libFuzzer target for the image header walkers (io/image_header.cpp): PNG IHDR and chunks, JPEG
// segments up to SOS, WebP RIFF chunks (VP8/VP8L/VP8X), BMP info headers, and the EXIF orientation
// in a TIFF block. The walkers never throw: any byte string gives a header, with `problem` set when
// the structure is broken. Beyond "no crash":
//  - the format is the one the magic bytes say; a header without a problem has a size in
//    1..2^30 x 1..2^30 (or 0x0 only where JPEG leaves the height to a DNL marker) and an
//    orientation in 1..8;
//  - the size-only walk (what bucketing reads from a file) agrees with the complete walk (what the
//    decoder checks first) whenever the complete walk finds nothing wrong: same size, same
//    orientation, no problem — the promise io/image.h's image_size makes;
//  - a complete BMP without a problem holds its whole pixel array (the walker's claim that the
//    check finds truncation), computed here without 64-bit wrap-around;
//  - tiff_orientation over the raw input is in 1..8.
// Built and run by scripts/fuzz (no torch, no OpenCV).
// fuzz-what: image headers (PNG/JPEG/WebP/BMP size, EXIF orientation)
// fuzz-sources: src/io/image_header.cpp
// fuzz-max-len: 4096
#include <cstddef>
#include <cstdint>

#include "io/image_header.h"

namespace {

uint32_t ih_le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

bool ih_plausible(const ls::io::ImageHeader& h) {
  if (h.orientation < 1 || h.orientation > 8) return false;
  if (!h.problem.empty()) return true;
  if (h.width == 0 && h.height == 0) return h.format == ls::io::ImageFormat::kJpeg || h.format == ls::io::ImageFormat::kUnknown;
  return h.width >= 1 && h.height >= 1 && h.width <= (1 << 30) && h.height <= (1 << 30);
}

// The pixel array a BMP header declares fits in the data (BITMAPINFOHEADER and later, uncompressed).
bool ih_bmp_pixels_fit(const uint8_t* data, size_t size, const ls::io::ImageHeader& h) {
  if (size < 34 || ih_le32(data + 14) < 40) return true;
  const uint32_t compression = ih_le32(data + 30);
  if (compression != 0 && compression != 3 && compression != 6) return true;
  const unsigned __int128 bpp = uint32_t{data[28]} | uint32_t{data[29]} << 8;
  const unsigned __int128 row = (bpp * static_cast<unsigned>(h.width) + 31) / 32 * 4;
  return ih_le32(data + 10) + row * static_cast<unsigned>(h.height) <= size;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ls::io;
  const ImageFormat format = sniff_image_format(data, size);
  const ImageHeader quick = parse_image_header(data, size, /*check_complete=*/false);
  const ImageHeader full = parse_image_header(data, size, /*check_complete=*/true);
  if (quick.format != format || full.format != format) __builtin_trap();
  if (!ih_plausible(quick) || !ih_plausible(full)) __builtin_trap();
  if (format == ImageFormat::kUnknown && (quick.width != 0 || !quick.problem.empty())) __builtin_trap();
  if (full.problem.empty()) {
    if (!quick.problem.empty() || quick.width != full.width || quick.height != full.height ||
        quick.orientation != full.orientation)
      __builtin_trap();
    if (format == ImageFormat::kBmp && !ih_bmp_pixels_fit(data, size, full)) __builtin_trap();
  }
  const int o = tiff_orientation(data, size);
  if (o < 1 || o > 8) __builtin_trap();
  return 0;
}
