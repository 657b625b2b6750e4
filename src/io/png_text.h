// PNG text chunks of files and images: read from a PNG file, or write an image as PNG with text
// chunks (the byte layer, with the chunk rules and PIL's layout, is io/png_text_chunks.h).
#pragma once

#include <map>
#include <string>

#include <opencv2/core.hpp>

#include "io/png_text_chunks.h"

namespace ls::io {

std::map<std::string, std::string> read_png_text_file(const std::string& path);

/// encode_image(".png", rgb) with the text chunks, written through a temp file + rename.
void write_png_with_text(const std::string& path, const cv::Mat& rgb, const PngTextEntries& entries);

}  // namespace ls::io
