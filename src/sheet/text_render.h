// Label text for the contact-sheet grid: DejaVu Sans (Debian fonts-dejavu-core) loaded by path
// through FreeType and drawn with cairo (cairo_ft_font_face_create_for_ft_face, no fontconfig
// lookup, so the same files give the same pixels), greedy word wrap with an ellipsis past a line
// limit, and coverage-blended drawing into 8-bit RGB cv::Mats.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace ls::sheet {

struct FontPaths {
  std::string regular = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
  std::string bold = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
};

enum class FontWeight { kRegular, kBold };
enum class Align { kStart, kCenter, kEnd };

/// Height of one text line at `px` pixels per em: ceil(1.25 px), room for DejaVu's ascent +
/// descent (1.164 em) with a little leading.
int line_height(int px);

/// Loads both faces at construction; throws ls::Error naming the font path and the Debian package
/// when a file is missing or unreadable. Not thread-safe (one measuring context inside).
class TextRenderer {
 public:
  explicit TextRenderer(const FontPaths& fonts = FontPaths{});
  ~TextRenderer();
  TextRenderer(const TextRenderer&) = delete;
  TextRenderer& operator=(const TextRenderer&) = delete;

  /// Advance width in pixels of one line of UTF-8 text.
  double width(const std::string& text, FontWeight weight, int px) const;

  /// Greedy wrap at spaces (and at '\n') to lines no wider than max_width; a word wider than a
  /// line is broken after '-', '_', '/', '.' or ',' and, where still too wide, between UTF-8
  /// characters. Past max_lines the last kept line ends in "…".
  /// Empty or all-space text gives no lines.
  std::vector<std::string> wrap(const std::string& text, FontWeight weight, int px,
                                double max_width, int max_lines) const;

  /// Draws `lines` (each line_height(px) tall) inside `box` of an RGB CV_8UC3 image, aligned
  /// horizontally per line and vertically as a block; each pixel becomes
  /// round(dst * (1 - a) + color * a) for glyph coverage a (grayscale antialiasing). Ink is
  /// clipped to `box`.
  void draw(cv::Mat& rgb, const cv::Rect& box, const std::vector<std::string>& lines,
            FontWeight weight, int px, Align h_align, Align v_align,
            const cv::Vec3b& color = cv::Vec3b(0, 0, 0)) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ls::sheet
