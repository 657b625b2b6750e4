// Decoding goes through cv::imdecode(IMREAD_UNCHANGED), which keeps the stored orientation,
// alpha and bit depth; orientation, alpha and depth are then handled here in one code path for
// all formats. Headers (sizes, EXIF) come from io/image_header; io/image_guard refuses bombs and
// damaged PNGs before a decoder allocates anything.
#include "io/image.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "core/atomic_file.h"
#include "core/strings.h"
#include "core/error.h"
#include "io/image_guard.h"
#include "io/image_header.h"

namespace ls::io {
namespace {

constexpr const char* kFix = "re-export the image or remove it from the dataset";

std::string hex_prefix(const std::vector<uint8_t>& bytes) {
  std::ostringstream out;
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i)
    out << (i ? " " : "") << std::hex << std::setw(2) << std::setfill('0') << int{bytes[i]};
  return out.str();
}

// The checks decode and the size readers share: empty, unknown format (TIFF, GIF, PNM... which
// OpenCV would decode too are refused here: kohya's datasets hold PNG/JPEG/WebP/BMP, and only
// these headers are read before decoding), the pixel limit, broken header.
void check_header(const ImageHeader& h, uint64_t size, const std::vector<uint8_t>& first_bytes,
                  const std::string& name) {
  LS_CHECK(size > 0, name, ": empty file (0 bytes); ", kFix);
  LS_CHECK(h.format != ImageFormat::kUnknown, name,
           ": not a PNG, JPEG, WebP or BMP image (first bytes ", hex_prefix(first_bytes),
           "); convert it to PNG or remove it from the dataset");
  check_pixel_limit(h, name);  // before `problem`: a bomb's header is refused whatever follows it
  LS_CHECK(h.problem.empty(), name, ": truncated or corrupt ", image_format_name(h.format), " (",
           h.problem, "); ", kFix);
}

// 16-bit -> 8-bit with rounding: round(v * 255 / 65535).
uint8_t scale16(uint32_t v) { return static_cast<uint8_t>((v * 255u + 32767u) / 65535u); }

// Straight alpha over white, 8-bit: round-half-down of c*a/255 + 255*(1 - a/255), in integers.
uint8_t over_white8(uint32_t c, uint32_t a) {
  return static_cast<uint8_t>((c * a + 255u * (255u - a) + 127u) / 255u);
}
uint8_t over_white16(uint32_t c, uint32_t a) {
  const double alpha = a / 65535.0, value = c * (255.0 / 65535.0);
  return static_cast<uint8_t>(std::lround(value * alpha + 255.0 * (1.0 - alpha)));
}

// Any imdecode output (1..4 channels, BGR order, 8 or 16 bit) -> CV_8UC3 RGB.
template <class T>
cv::Mat to_rgb8_typed(const cv::Mat& in) {
  const int channels = in.channels();
  cv::Mat out(in.rows, in.cols, CV_8UC3);
  const bool wide = sizeof(T) == 2;
  for (int y = 0; y < in.rows; ++y) {
    const T* src = in.ptr<T>(y);
    uint8_t* dst = out.ptr<uint8_t>(y);
    for (int x = 0; x < in.cols; ++x, src += channels, dst += 3) {
      uint32_t r, g, b;
      if (channels <= 2) {
        r = g = b = src[0];
      } else {
        b = src[0];
        g = src[1];
        r = src[2];
      }
      const bool has_alpha = channels == 2 || channels == 4;
      const uint32_t a = has_alpha ? src[channels - 1] : 0;
      if (!has_alpha) {
        dst[0] = wide ? scale16(r) : static_cast<uint8_t>(r);
        dst[1] = wide ? scale16(g) : static_cast<uint8_t>(g);
        dst[2] = wide ? scale16(b) : static_cast<uint8_t>(b);
      } else if (wide) {
        dst[0] = over_white16(r, a);
        dst[1] = over_white16(g, a);
        dst[2] = over_white16(b, a);
      } else {
        dst[0] = over_white8(r, a);
        dst[1] = over_white8(g, a);
        dst[2] = over_white8(b, a);
      }
    }
  }
  return out;
}

// The alpha channel of an imdecode output as CV_8UC1 (16-bit scaled with rounding); 255 without one.
cv::Mat alpha8(const cv::Mat& in, const std::string& name) {
  const int channels = in.channels();
  if (channels != 2 && channels != 4) return cv::Mat(in.rows, in.cols, CV_8UC1, cv::Scalar(255));
  cv::Mat a;
  cv::extractChannel(in, a, channels - 1);
  if (a.depth() == CV_8U) return a;
  LS_CHECK(a.depth() == CV_16U, name, ": unsupported sample type (OpenCV depth ", a.depth(),
           "); convert it to an 8- or 16-bit PNG");
  cv::Mat out(a.rows, a.cols, CV_8UC1);
  for (int y = 0; y < a.rows; ++y)
    for (int x = 0; x < a.cols; ++x) out.at<uint8_t>(y, x) = scale16(a.at<uint16_t>(y, x));
  return out;
}

cv::Mat to_rgb8(const cv::Mat& in, const std::string& name) {
  if (in.depth() == CV_8U) return to_rgb8_typed<uint8_t>(in);
  if (in.depth() == CV_16U) return to_rgb8_typed<uint16_t>(in);
  LS_FAIL(name, ": unsupported sample type (OpenCV depth ", in.depth(),
          "); convert it to an 8- or 16-bit PNG");
}

ImageSize displayed(int width, int height, int orientation) {
  return orientation >= 5 ? ImageSize{height, width} : ImageSize{width, height};
}

std::string lower_extension(const std::string& path) {
  const auto dot = path.find_last_of('.');
  const auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  return core::ascii_lower(path.substr(dot));
}

// A folder or device named like an image: one line instead of what reading it would do (a folder
// opens on Linux and reports a size of 2^63 - 1 on ext4).
void require_regular_file(const std::string& path) {
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  LS_CHECK(!ec && std::filesystem::exists(st), path, ": cannot open for reading (",
           ec ? ec.message() : std::string("no such file"), "); check the path");
  LS_CHECK(std::filesystem::is_regular_file(st), path, ": is ",
           std::filesystem::is_directory(st) ? "a folder" : "not a regular file",
           ", not an image; rename it or move it out of the dataset");
}

// A file's header read from disk and put through check_header (the first bytes only read for the
// message about an unknown format). structure=false leaves out the size-only walk's `problem`:
// that walk may stop early, and read_bytes checks completeness on the whole bytes afterwards.
ImageHeader checked_file_header(const std::string& path, bool structure) {
  require_regular_file(path);
  uint64_t size = 0;
  ImageHeader h = read_image_header(path, &size);
  std::vector<uint8_t> first(8, 0);
  if (h.format == ImageFormat::kUnknown && size > 0) {
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(first.data()), 8);
    first.resize(static_cast<size_t>(in.gcount()));
  }
  if (!structure) h.problem.clear();
  check_header(h, size, first, path);
  return h;
}

// The whole file, after its header passed check_header: a bomb's or a non-image's bytes are never read.
std::vector<uint8_t> read_bytes(const std::string& path) {
  (void)checked_file_header(path, /*structure=*/false);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  LS_CHECK(in.good(), path, ": cannot open for reading; check the path");
  const auto size = static_cast<size_t>(in.tellg());
  std::vector<uint8_t> bytes(size);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  LS_CHECK(in.good() || size == 0, path, ": read failed; check the file");
  return bytes;
}

// Everything refused before a decoder runs; returns the full header.
ImageHeader checked_header(const std::vector<uint8_t>& bytes, const std::string& name) {
  const ImageHeader h = parse_image_header(bytes.data(), bytes.size(), /*check_complete=*/true);
  check_header(h, bytes.size(), bytes, name);
  check_before_decode(h, bytes.data(), bytes.size(), name);
  // cv::imdecode wraps the bytes in a Mat of int columns.
  LS_CHECK(bytes.size() <= static_cast<size_t>(INT32_MAX), name, ": ", bytes.size(),
           " bytes is more than an image decoder takes (2 GiB); ", kFix);
  return h;
}

// OpenCV logs its own line for each file its codecs refuse ("imdecode_(''): can't read data");
// decode_image reports that file in its ls::Error already, so OpenCV's logging is turned off once.
void quiet_opencv_log() {
  static const bool quiet = [] {
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
    return true;
  }();
  (void)quiet;
}

}  // namespace

DecodedImage decode_image(const std::vector<uint8_t>& bytes, const std::string& name, bool with_alpha) {
  const ImageHeader h = checked_header(bytes, name);
  quiet_opencv_log();
  cv::Mat raw;
  try {
    const cv::Mat wrapped(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data()));
    raw = cv::imdecode(wrapped, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    LS_FAIL(name, ": cannot decode the ", image_format_name(h.format), " data (", e.err, "); ", kFix);
  }
  LS_CHECK(!raw.empty(), name, ": cannot decode the ", image_format_name(h.format),
           " data (corrupt or unsupported variant); ", kFix);
  // The size-only path trusts the header: a disagreement would put the image in a wrong bucket.
  LS_CHECK(h.width == 0 || (raw.cols == h.width && raw.rows == h.height), name, ": header says ",
           h.width, "x", h.height, " but the pixels are ", raw.cols, "x", raw.rows, "; ", kFix);
  DecodedImage out;
  out.rgb = apply_exif_orientation(to_rgb8(raw, name), h.orientation);
  if (with_alpha) out.alpha = apply_exif_orientation(alpha8(raw, name), h.orientation);
  return out;
}

cv::Mat decode_image_rgb(const std::vector<uint8_t>& bytes, const std::string& name) {
  return decode_image(bytes, name, false).rgb;
}

cv::Mat read_image_rgb(const std::string& path) { return decode_image_rgb(read_bytes(path), path); }

DecodedImage read_image(const std::string& path, bool with_alpha) {
  return decode_image(read_bytes(path), path, with_alpha);
}

int exif_orientation(const uint8_t* data, size_t size) {
  return parse_image_header(data, size, /*check_complete=*/false).orientation;
}

cv::Mat apply_exif_orientation(const cv::Mat& image, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2: cv::flip(image, out, 1); break;                       // mirror left-right
    case 3: cv::rotate(image, out, cv::ROTATE_180); break;
    case 4: cv::flip(image, out, 0); break;                       // mirror top-bottom
    case 5: cv::transpose(image, out); break;                     // about the main diagonal
    case 6: cv::rotate(image, out, cv::ROTATE_90_CLOCKWISE); break;
    case 7: cv::transpose(image, out); cv::flip(out, out, -1); break;  // about the anti-diagonal
    case 8: cv::rotate(image, out, cv::ROTATE_90_COUNTERCLOCKWISE); break;
    default: out = image; break;
  }
  return out;
}

ImageSize check_image(const std::vector<uint8_t>& bytes, const std::string& name) {
  const ImageHeader h = checked_header(bytes, name);
  if (h.width == 0) {
    const cv::Mat rgb = decode_image_rgb(bytes, name);
    return {rgb.cols, rgb.rows};
  }
  return displayed(h.width, h.height, h.orientation);
}

ImageSize read_image_size(const std::string& path) {
  const ImageHeader h = checked_file_header(path, /*structure=*/true);
  if (h.width == 0) {
    const cv::Mat rgb = read_image_rgb(path);
    return {rgb.cols, rgb.rows};
  }
  return displayed(h.width, h.height, h.orientation);
}

void check_image_file_header(const std::string& path) { (void)checked_file_header(path, /*structure=*/false); }

ImageSize image_size_from_bytes(const std::vector<uint8_t>& bytes, const std::string& name) {
  const ImageHeader h = parse_image_header(bytes.data(), bytes.size(), /*check_complete=*/false);
  check_header(h, bytes.size(), bytes, name);
  if (h.width == 0) {
    const cv::Mat rgb = decode_image_rgb(bytes, name);
    return {rgb.cols, rgb.rows};
  }
  return displayed(h.width, h.height, h.orientation);
}

cv::Mat resize_image(const cv::Mat& rgb, int width, int height) {
  LS_CHECK(width > 0 && height > 0, "resize_image: target size must be positive, got ", width, "x",
           height);
  LS_CHECK(!rgb.empty(), "resize_image: empty input image");
  if (rgb.cols == width && rgb.rows == height) return rgb.clone();
  const bool shrink_both = rgb.cols > width && rgb.rows > height;
  cv::Mat out;
  cv::resize(rgb, out, cv::Size(width, height), 0, 0,
             shrink_both ? cv::INTER_AREA : cv::INTER_LANCZOS4);
  return out;
}

std::vector<uint8_t> encode_image(const std::string& ext_in, const cv::Mat& rgb) {
  const std::string ext = core::ascii_lower(ext_in);
  LS_CHECK(rgb.type() == CV_8UC3, "encode_image: expected an 8-bit RGB image (CV_8UC3), got type ",
           rgb.type());
  std::vector<int> params;
  if (ext == ".jpg" || ext == ".jpeg") params = {cv::IMWRITE_JPEG_QUALITY, 95};
  else if (ext == ".webp") params = {cv::IMWRITE_WEBP_QUALITY, 101};  // > 100 means lossless
  else if (ext == ".png") params = {cv::IMWRITE_PNG_COMPRESSION, 3};
  else LS_CHECK(ext == ".bmp", "cannot write images with extension '", ext_in,
                "'; use .png, .jpg, .jpeg, .webp or .bmp");
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uint8_t> out;
  LS_CHECK(cv::imencode(ext, bgr, out, params), "encode_image: OpenCV could not encode ", ext);
  return out;
}

void write_image(const std::string& path, const cv::Mat& rgb) {
  const std::string ext = lower_extension(path);
  LS_CHECK(!ext.empty(), path, ": no file extension; use .png, .jpg, .jpeg, .webp or .bmp");
  const std::vector<uint8_t> bytes = encode_image(ext, rgb);
  core::AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

at::Tensor image_to_tensor(const cv::Mat& rgb) {
  LS_CHECK(rgb.type() == CV_8UC3, "image_to_tensor: expected an 8-bit RGB image (CV_8UC3), got type ",
           rgb.type());
  const cv::Mat dense = rgb.isContinuous() ? rgb : rgb.clone();
  const at::Tensor hwc = torch::from_blob(dense.data, {dense.rows, dense.cols, 3}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).to(torch::kFloat32).div_(127.5).sub_(1.0).contiguous();  // [3,H,W]
}

cv::Mat tensor_to_image(const at::Tensor& chw) {
  LS_CHECK(chw.dim() == 3 && chw.size(0) == 3, "tensor_to_image: expected a [3,H,W] tensor, got ",
           chw.sizes());
  LS_CHECK(chw.is_floating_point(), "tensor_to_image: expected a float tensor, got ", chw.dtype());
  const at::Tensor x = chw.detach().to(torch::kCPU, torch::kFloat32);
  LS_CHECK(!x.isnan().any().item<bool>(), "tensor_to_image: the tensor holds NaN values");
  const at::Tensor hwc =
      x.add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  cv::Mat out(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3);
  std::memcpy(out.data, hwc.data_ptr<uint8_t>(), static_cast<size_t>(hwc.numel()));
  return out;
}

}  // namespace ls::io
