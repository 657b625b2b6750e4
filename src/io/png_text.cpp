// PNG text chunks of files and images: the file read and the image encode around
// io/png_text_chunks (the atomic write goes through core/atomic_file).
#include "io/png_text.h"

#include "core/atomic_file.h"
#include "io/image.h"

namespace ls::io {

std::map<std::string, std::string> read_png_text_file(const std::string& path) {
  const std::string bytes = core::read_file(path);
  return read_png_text(std::vector<uint8_t>(bytes.begin(), bytes.end()), path);
}

void write_png_with_text(const std::string& path, const cv::Mat& rgb, const PngTextEntries& entries) {
  std::vector<uint8_t> png = png_with_text(encode_image(".png", rgb), entries);
  core::write_file_atomic(path, std::string(png.begin(), png.end()));
}

}  // namespace ls::io
