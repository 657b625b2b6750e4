// FreeType faces are handed to cairo as documented for cairo_ft_font_face_create_for_ft_face: the
// FT_Face is released by the cairo font face's user-data destructor, which cairo runs only once
// its own caches drop the face. Each face owns its FT_Library, so neither outlives the other.
#include "sheet/text_render.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <cairo-ft.h>
#include <cairo.h>
#include <ft2build.h>
#include FT_FREETYPE_H

#include "core/error.h"

namespace ls::sheet {
namespace {

constexpr const char* kEllipsis = "\xE2\x80\xA6";  // U+2026
constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD

struct FaceOwner {
  FT_Library library;
  FT_Face face;
};

const cairo_user_data_key_t kFaceKey{};

void release_face(void* data) {
  auto* owner = static_cast<FaceOwner*>(data);
  if (owner->face) FT_Done_Face(owner->face);
  FT_Done_FreeType(owner->library);
  delete owner;
}

cairo_font_face_t* load_face(const std::string& path) {
  std::error_code ec;
  LS_CHECK(std::filesystem::is_regular_file(path, ec), "font ", path,
           " not found; install Debian's fonts-dejavu-core (apt-get install fonts-dejavu-core) "
           "or point the grid's font paths at a DejaVu Sans file");
  auto* owner = new FaceOwner{nullptr, nullptr};
  if (FT_Init_FreeType(&owner->library) != 0) {
    delete owner;
    LS_FAIL("font ", path, ": FreeType could not start (out of memory?)");
  }
  const FT_Error err = FT_New_Face(owner->library, path.c_str(), 0, &owner->face);
  if (err != 0) {
    owner->face = nullptr;
    release_face(owner);
    LS_FAIL("font ", path, ": FreeType cannot read it (error ", err,
            "); reinstall fonts-dejavu-core (apt-get install --reinstall fonts-dejavu-core)");
  }
  cairo_font_face_t* cairo_face = cairo_ft_font_face_create_for_ft_face(owner->face, 0);
  if (cairo_font_face_set_user_data(cairo_face, &kFaceKey, owner, release_face) !=
      CAIRO_STATUS_SUCCESS) {
    release_face(owner);
    cairo_font_face_destroy(cairo_face);
    LS_FAIL("font ", path, ": cairo could not take the FreeType face (out of memory?)");
  }
  return cairo_face;
}

// Length of the UTF-8 sequence starting at s[i], or 0 when it is malformed.
size_t utf8_length(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
  return n;
}

// cairo refuses invalid UTF-8 by putting the context into a sticky error state, so labels are
// cleaned first: malformed bytes become U+FFFD, tabs and other controls become spaces.
std::string clean_text(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_length(s, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    out += (n == 1 && c < 0x20 && c != '\n') ? std::string(" ") : s.substr(i, n);
    i += n;
  }
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      if (i > start) parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

// A word cut after each '-', '_', '/', '.' or ',': where a too-long file name may break first.
std::vector<std::string> break_pieces(const std::string& word) {
  std::vector<std::string> pieces;
  size_t start = 0;
  for (size_t i = 0; i < word.size(); ++i) {
    const char c = word[i];
    if ((c == '-' || c == '_' || c == '/' || c == '.' || c == ',') && i + 1 < word.size()) {
      pieces.push_back(word.substr(start, i + 1 - start));
      start = i + 1;
    }
  }
  pieces.push_back(word.substr(start));
  return pieces;
}

void pop_utf8_char(std::string& s) {
  while (!s.empty() && (static_cast<unsigned char>(s.back()) >> 6) == 0x2) s.pop_back();
  if (!s.empty()) s.pop_back();
}

}  // namespace

int line_height(int px) { return (5 * px + 3) / 4; }

struct TextRenderer::Impl {
  cairo_font_face_t* faces[2] = {nullptr, nullptr};
  cairo_font_options_t* options = nullptr;
  cairo_surface_t* scratch = nullptr;
  cairo_t* measure = nullptr;

  ~Impl() {
    if (measure) cairo_destroy(measure);
    if (scratch) cairo_surface_destroy(scratch);
    if (options) cairo_font_options_destroy(options);
    for (cairo_font_face_t* f : faces)
      if (f) cairo_font_face_destroy(f);
  }

  void select(cairo_t* cr, FontWeight weight, int px) const {
    cairo_set_font_face(cr, faces[weight == FontWeight::kBold ? 1 : 0]);
    cairo_set_font_size(cr, px);
    cairo_set_font_options(cr, options);
  }
};

TextRenderer::TextRenderer(const FontPaths& fonts) : impl_(std::make_unique<Impl>()) {
  impl_->faces[0] = load_face(fonts.regular);
  impl_->faces[1] = load_face(fonts.bold);
  // Grayscale antialiasing with light hinting and whole-pixel advances: crisp at 14-16 px and
  // the same pixels on every machine with the same FreeType and font files.
  impl_->options = cairo_font_options_create();
  cairo_font_options_set_antialias(impl_->options, CAIRO_ANTIALIAS_GRAY);
  cairo_font_options_set_hint_style(impl_->options, CAIRO_HINT_STYLE_SLIGHT);
  cairo_font_options_set_hint_metrics(impl_->options, CAIRO_HINT_METRICS_ON);
  impl_->scratch = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
  impl_->measure = cairo_create(impl_->scratch);
}

TextRenderer::~TextRenderer() = default;

double TextRenderer::width(const std::string& text, FontWeight weight, int px) const {
  const std::string clean = clean_text(text);
  impl_->select(impl_->measure, weight, px);
  cairo_text_extents_t ext;
  cairo_text_extents(impl_->measure, clean.c_str(), &ext);
  LS_CHECK(cairo_status(impl_->measure) == CAIRO_STATUS_SUCCESS, "cairo could not measure '",
           clean, "': ", cairo_status_to_string(cairo_status(impl_->measure)));
  return ext.x_advance;
}

std::vector<std::string> TextRenderer::wrap(const std::string& text, FontWeight weight, int px,
                                            double max_width, int max_lines) const {
  LS_CHECK(max_lines >= 1, "text wrap: max_lines must be >= 1, got ", max_lines);
  auto fits = [&](const std::string& s) { return width(s, weight, px) <= max_width; };
  std::vector<std::string> lines;
  for (const std::string& paragraph : split(clean_text(text), '\n')) {
    std::string line;
    for (const std::string& word : split(paragraph, ' ')) {
      const std::string joined = line.empty() ? word : line + " " + word;
      if (fits(joined)) {
        line = joined;
        continue;
      }
      if (!line.empty()) lines.push_back(line);
      line.clear();
      if (fits(word)) {
        line = word;
        continue;
      }
      // A word wider than the line (a long file name): break it after punctuation, and
      // pieces that are still too wide between characters.
      for (const std::string& piece : break_pieces(word)) {
        if (fits(line + piece)) {
          line += piece;
          continue;
        }
        if (!line.empty()) lines.push_back(line);
        line.clear();
        if (fits(piece)) {
          line = piece;
          continue;
        }
        for (size_t i = 0; i < piece.size();) {
          const size_t n = utf8_length(piece, i);
          const std::string ch = piece.substr(i, n);
          if (!line.empty() && !fits(line + ch)) {
            lines.push_back(line);
            line.clear();
          }
          line += ch;
          i += n;
        }
      }
    }
    if (!line.empty()) lines.push_back(line);
  }
  if (static_cast<int>(lines.size()) > max_lines) {
    lines.resize(max_lines);
    std::string& last = lines.back();
    while (!last.empty() && !fits(last + kEllipsis)) pop_utf8_char(last);
    while (!last.empty() && (last.back() == ' ' || last.back() == ',')) last.pop_back();
    last += kEllipsis;
  }
  return lines;
}

void TextRenderer::draw(cv::Mat& rgb, const cv::Rect& box, const std::vector<std::string>& lines,
                        FontWeight weight, int px, Align h_align, Align v_align,
                        const cv::Vec3b& color) const {
  LS_CHECK(rgb.type() == CV_8UC3, "text draw: expected an 8-bit RGB image (CV_8UC3)");
  LS_CHECK((box & cv::Rect(0, 0, rgb.cols, rgb.rows)) == box && !box.empty(),
           "text draw: box ", box, " is empty or outside the ", rgb.cols, "x", rgb.rows, " image");
  if (lines.empty()) return;
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_A8, box.width, box.height);
  cairo_t* cr = cairo_create(surface);
  impl_->select(cr, weight, px);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  const int line_h = line_height(px);
  const int block_h = line_h * static_cast<int>(lines.size());
  auto place = [](Align a, double free_space) {
    return a == Align::kStart ? 0.0 : a == Align::kEnd ? free_space : std::floor(free_space / 2);
  };
  const double top = place(v_align, box.height - block_h);
  const double baseline = std::round((line_h - (fe.ascent + fe.descent)) / 2 + fe.ascent);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string clean = clean_text(lines[i]);
    const double x = place(h_align, std::round(box.width - width(clean, weight, px)));
    cairo_move_to(cr, x, top + static_cast<double>(i) * line_h + baseline);
    cairo_show_text(cr, clean.c_str());
  }
  const cairo_status_t status = cairo_status(cr);
  cairo_surface_flush(surface);
  const unsigned char* data = cairo_image_surface_get_data(surface);
  const int stride = cairo_image_surface_get_stride(surface);
  for (int y = 0; y < box.height && status == CAIRO_STATUS_SUCCESS; ++y) {
    auto* dst = rgb.ptr<cv::Vec3b>(box.y + y) + box.x;
    for (int x = 0; x < box.width; ++x) {
      const int a = data[y * stride + x];
      if (a == 0) continue;
      for (int c = 0; c < 3; ++c) dst[x][c] = static_cast<uint8_t>((dst[x][c] * (255 - a) + color[c] * a + 127) / 255);
    }
  }
  cairo_destroy(cr);
  cairo_surface_destroy(surface);
  LS_CHECK(status == CAIRO_STATUS_SUCCESS, "cairo could not draw text: ",
           cairo_status_to_string(status));
}

}  // namespace ls::sheet
