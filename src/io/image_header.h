// Image container headers read without decoding pixels: format sniffing, stored size (PNG IHDR,
// JPEG SOFn, WebP VP8/VP8L/VP8X, BMP info header) and the EXIF orientation tag (JPEG APP1,
// PNG eXIf, WebP EXIF chunk; TIFF IFD0 tag 0x0112). Specs: PNG 3rd ed. + eXIf extension 1.5,
// JPEG T.81 markers, WebP container (RIFF) spec, EXIF 2.3 (CIPA DC-008) section 4.6.4.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ls::io {

enum class ImageFormat { kUnknown, kPng, kJpeg, kWebp, kBmp };

/// From the magic bytes only.
ImageFormat sniff_image_format(const uint8_t* data, size_t size);
const char* image_format_name(ImageFormat format);

struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  int width = 0;   // stored size (before orientation); 0 when the header did not give it
  int height = 0;
  int orientation = 1;  // EXIF 1..8
  /// Non-empty when the structure is broken ("ends inside chunk IDAT", "no EOI marker"...).
  std::string problem;
  /// With check_complete: bytes of coded pixel data (PNG: the IDAT payloads; JPEG: from the end of
  /// the first SOS segment to EOI), and the fewest such bytes any valid encoder can produce for the
  /// declared size (deflate inflates at most 1032:1; Huffman-coded JPEG spends at least one bit per
  /// MCU). min_coded_bytes is 0 where the format has no such bound (WebP, BMP, arithmetic-coded or
  /// hierarchical JPEG) or the size is unknown. A file below it cannot hold its declared pixels.
  uint64_t coded_bytes = 0;
  uint64_t min_coded_bytes = 0;
};

/// Parses bytes in memory. With check_complete the whole structure is walked as well
/// (PNG up to IEND, JPEG up to EOI, WebP RIFF size, BMP pixel array), which finds truncation.
ImageHeader parse_image_header(const uint8_t* data, size_t size, bool check_complete);
/// Reads only the parts of the file the header needs (JPEG segments before SOS, PNG chunks
/// before IDAT, WebP chunk headers, BMP info header). Throws ls::Error when it cannot open.
ImageHeader read_image_header(const std::string& path, uint64_t* file_size = nullptr);

/// Orientation tag (1..8) of a TIFF block (the EXIF payload, "II"/"MM" header; a leading
/// "Exif\0\0" is skipped); 1 when absent or unparseable.
int tiff_orientation(const uint8_t* data, size_t size);

}  // namespace ls::io
