// The checks run on an image's bytes before any decoder sees them (see image_guard.h).
#include "io/image_guard.h"

#include <zlib.h>

#include <cstdlib>

#include "core/error.h"
#include "core/strings.h"

namespace ls::io {
namespace {

constexpr const char* kGuardFix = "re-export the image or remove it from the dataset";

uint32_t guard_be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

// The structure walk (check_complete) already found every chunk inside the data up to IEND; a
// byte flipped anywhere in a chunk's type or data changes its CRC-32, so this finds the damage
// that libpng would otherwise meet half-way (or only warn about, for ancillary chunks).
void guard_png_crcs(const uint8_t* data, size_t size, const std::string& name) {
  size_t pos = 8;
  while (pos + 12 <= size) {
    const uint32_t length = guard_be32(data + pos);
    if (length > size - pos - 12) return;  // the structure check reports this
    const uint8_t* type = data + pos + 4;
    const uint32_t stored = guard_be32(type + 4 + length);
    const uint32_t actual = static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), type, static_cast<uInt>(length + 4)));
    LS_CHECK(stored == actual, name, ": corrupt PNG (chunk ", std::string(reinterpret_cast<const char*>(type), 4),
             " at offset ", pos, " fails its CRC check); ", kGuardFix);
    if (std::string(reinterpret_cast<const char*>(type), 4) == "IEND") return;
    pos += 12 + size_t{length};
  }
}

}  // namespace

uint64_t max_image_pixels() {
  const char* env = std::getenv("LORASTUDIO_MAX_IMAGE_PIXELS");
  if (env == nullptr || *env == '\0') return kDefaultMaxImagePixels;
  int64_t value = 0;
  LS_CHECK(core::parse_int64(env, value) && value > 0, "LORASTUDIO_MAX_IMAGE_PIXELS='", env,
           "' is not a positive whole number of pixels; unset it for the default of ", kDefaultMaxImagePixels);
  return static_cast<uint64_t>(value);
}

void check_pixel_limit(const ImageHeader& h, const std::string& name) {
  if (h.width <= 0 || h.height <= 0) return;
  const uint64_t pixels = static_cast<uint64_t>(h.width) * static_cast<uint64_t>(h.height);
  const uint64_t limit = max_image_pixels();
  LS_CHECK(pixels <= limit, name, ": ", image_format_name(h.format), " header declares ", h.width, "x", h.height,
           " = ", pixels, " pixels, over the limit of ", limit,
           " (a decompression bomb, or too large to train on); downscale it, or raise LORASTUDIO_MAX_IMAGE_PIXELS");
}

void check_before_decode(const ImageHeader& h, const uint8_t* data, size_t size, const std::string& name) {
  check_pixel_limit(h, name);
  LS_CHECK(h.coded_bytes >= h.min_coded_bytes, name, ": ", image_format_name(h.format), " header declares ", h.width,
           "x", h.height, " pixels but the file holds only ", h.coded_bytes,
           " bytes of coded image data, fewer than any encoder writes for that size (", h.min_coded_bytes,
           "); the header is corrupt or forged, ", kGuardFix);
  if (h.format == ImageFormat::kPng) guard_png_crcs(data, size, name);
}

}  // namespace ls::io
