// Images for training data: decode to 8-bit RGB with EXIF orientation applied and alpha
// composited on white, header-only sizes for bucketing, kohya's resize rule
// (kohya-ss/sd-scripts library/train_util.py trim_and_resize_if_required), atomic writes, and
// the [-1, 1] CHW tensor layout the VAE takes (train_util.IMAGE_TRANSFORMS).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

namespace ls::io {

struct ImageSize {
  int width = 0;
  int height = 0;
};

/// 8-bit RGB (CV_8UC3 in R,G,B order, not OpenCV's BGR) from PNG/JPEG/WebP/BMP bytes: EXIF
/// orientation applied (JPEG APP1 "Exif", PNG eXIf chunk before IDAT, WebP RIFF "EXIF" chunk;
/// 1..8 including the mirrored 2,4,5,7), alpha composited on WHITE (straight alpha), 16-bit
/// scaled to 8-bit with rounding (v*255/65535), grayscale (+alpha) expanded to RGB. Throws
/// ls::Error "<name>: <what is wrong>; <what to do>" for a 0-byte file, truncated/corrupt data
/// (the container structure is walked to its end marker first: libjpeg alone would pad a cut
/// JPEG with gray), an unsupported format, or a declared size over max_image_pixels() or beyond
/// what the data can hold (checked before the decoder allocates; see io/image_guard.h).
cv::Mat decode_image_rgb(const std::vector<uint8_t>& bytes, const std::string& name_for_errors);
cv::Mat read_image_rgb(const std::string& path);

/// The RGB above and, when asked for, the alpha channel as CV_8UC1 in the same displayed
/// orientation (16-bit scaled as the colours; 255 everywhere for images without alpha): kohya's
/// alpha_mask, read from the same decode.
struct DecodedImage {
  cv::Mat rgb;
  cv::Mat alpha;  // empty unless with_alpha
};
DecodedImage decode_image(const std::vector<uint8_t>& bytes, const std::string& name_for_errors, bool with_alpha);
DecodedImage read_image(const std::string& path, bool with_alpha);

/// EXIF orientation tag (1..8) found in the bytes of a JPEG/PNG/WebP; 1 when absent or unparseable.
int exif_orientation(const uint8_t* data, size_t size);
/// Turns a stored image into its displayed form for an EXIF orientation (1 = unchanged).
cv::Mat apply_exif_orientation(const cv::Mat& image, int orientation);

/// Displayed size (after EXIF orientation: 5..8 swap width/height) from the header only (PNG IHDR,
/// JPEG SOFn, WebP VP8/VP8L/VP8X, BMP); a full decode only when the header has no size (JPEG DNL).
/// Errors as decode for empty, unknown or broken headers; data cut after the header passes here
/// and fails at decode.
ImageSize read_image_size(const std::string& path);
ImageSize image_size_from_bytes(const std::vector<uint8_t>& bytes, const std::string& name_for_errors);

/// What decode refuses without decoding: empty, unknown format, truncated or broken structure
/// (the whole container walked), a declared size over the pixel limit or larger than the coded
/// data can hold, PNG chunk CRCs (io/image_guard.h). Returns the displayed size. A file that passes
/// can still fail to decode when its compressed data is damaged inside an intact structure.
ImageSize check_image(const std::vector<uint8_t>& bytes, const std::string& name_for_errors);

/// What can be refused from a file's header alone, before its bytes are read: a folder or a missing
/// file, an empty file, an unknown format, a declared size over the pixel limit. Reads the header
/// only; check_image on the whole bytes does the rest (structure, coded bytes, CRCs).
void check_image_file_header(const std::string& path);

/// kohya's resampling rule: INTER_AREA when shrinking in both directions, else INTER_LANCZOS4
/// (current kohya uses PIL's LANCZOS for the latter; OpenCV's is the 8x8-tap variant).
cv::Mat resize_image(const cv::Mat& rgb, int width, int height);

/// Writes by extension (.png, .jpg/.jpeg at quality 95, .webp lossless, .bmp; any case) through a
/// temp file + rename. Input is RGB (CV_8UC3).
void write_image(const std::string& path, const cv::Mat& rgb);
/// The encoded bytes write_image would write (ext like ".png").
std::vector<uint8_t> encode_image(const std::string& ext, const cv::Mat& rgb);

/// uint8 RGB HWC -> float32 CPU tensor [3,H,W] in [-1,1] (x/127.5 - 1).
at::Tensor image_to_tensor(const cv::Mat& rgb);
/// [3,H,W] of any float dtype/device -> uint8 RGB HWC: round((x+1)*127.5), clamped to 0..255.
cv::Mat tensor_to_image(const at::Tensor& chw);

}  // namespace ls::io
