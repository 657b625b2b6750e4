// A corpus of damaged and hostile image files, generated (never committed) from small valid PNG,
// JPEG, WebP and BMP images: every 1/16 truncation, seeded random byte flips, wrong extensions,
// non-images, a folder named like an image, and decompression bombs (huge declared sizes, a
// 1-pixel-wide tall one, forged sizes over tiny data, a zlib stream that inflates far past its
// image). Each entry says what the decoder must do with it; the tests in tests/io, tests/cli and
// tests/caption run lorastudio's decode, dataset scan, train and captioner over it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ls::test {

struct CorpusEntry {
  enum class Expect {
    kImage,    // decodes to width x height (displayed)
    kRefused,  // one ls::Error line naming the file, containing `refusal`
    kEither,   // damage a decoder may or may not notice: an image or a refusal, never anything else
  };
  std::string name;  // file name with extension; unique in the corpus
  std::string kind;  // "valid", "truncated", "flipped", "extension", "not_image", "bomb", "folder"
  std::vector<uint8_t> bytes;
  Expect expect = Expect::kEither;
  int width = 0, height = 0;  // kImage
  std::string refusal;         // kRefused: a phrase the message holds ("" = any)
  bool folder = false;         // a directory with this name instead of a file
};

/// The whole corpus, the same bytes on every machine and run (fixed seeds, OpenCV's encoders at
/// fixed settings; flips are placed by ls::core::Rng).
std::vector<CorpusEntry> image_corpus();

/// `jpeg` with an APP1 "Exif\0\0" segment holding `tiff` right after its SOI marker.
std::vector<uint8_t> jpeg_with_exif_segment(const std::vector<uint8_t>& jpeg, const std::vector<uint8_t>& tiff);

/// Writes every entry into `dir` (created), folders as empty directories.
void write_corpus(const std::filesystem::path& dir, const std::vector<CorpusEntry>& corpus);

}  // namespace ls::test
