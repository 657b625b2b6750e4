// Layout first (grid_geometry: pure arithmetic over measured, wrapped text), then painting
// (render_grid: labels blended into a white canvas, cells copied last so their pixels are exact).
#include "sheet/grid_render.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "io/image.h"

namespace ls::sheet {
namespace {

const cv::Vec3b kPlaceholderFill(236, 236, 236);
const cv::Vec3b kPlaceholderBorder(200, 200, 200);
const cv::Vec3b kPlaceholderInk(112, 112, 112);
const cv::Vec3b kRule(208, 208, 208);

int count_or_one(const std::vector<std::string>& labels) {
  return std::max(1, static_cast<int>(labels.size()));
}

void check_style(const GridStyle& s) {
  LS_CHECK(s.font_px >= 14 && s.title_px >= 14, "grid style: font_px and title_px must be >= 14 ",
           "so labels stay legible, got ", s.font_px, " and ", s.title_px);
  LS_CHECK(s.margin >= 0 && s.gap >= 0 && s.block_gap >= 0 && s.label_pad >= 0,
           "grid style: margin, gap, block_gap and label_pad must be >= 0");
  LS_CHECK(s.col_label_max_w > 2 * s.label_pad && s.row_label_max_w > 2 * s.label_pad,
           "grid style: col_label_max_w and row_label_max_w must exceed 2 * label_pad");
  LS_CHECK(s.max_label_lines >= 1, "grid style: max_label_lines must be >= 1, got ",
           s.max_label_lines);
  LS_CHECK(s.empty_cell.width > 0 && s.empty_cell.height > 0,
           "grid style: empty_cell must have a positive size");
}

void check_cells(const GridSpec& spec, int nx, int ny, int nz) {
  LS_CHECK(!spec.z || !spec.z->labels.empty(),
           "grid: the z axis '", spec.z ? spec.z->title : "", "' has no values; drop it or add one");
  LS_CHECK(static_cast<int>(spec.cells.size()) == nz, "grid: cells hold ", spec.cells.size(),
           " blocks but the z axis has ", nz, " value(s)");
  for (int z = 0; z < nz; ++z) {
    LS_CHECK(static_cast<int>(spec.cells[z].size()) == ny, "grid: block ", z, " holds ",
             spec.cells[z].size(), " rows but the y axis has ", ny, " value(s)");
    for (int y = 0; y < ny; ++y) {
      LS_CHECK(static_cast<int>(spec.cells[z][y].size()) == nx, "grid: block ", z, " row ", y,
               " holds ", spec.cells[z][y].size(), " cells but the x axis has ", nx, " value(s)");
      for (int x = 0; x < nx; ++x) {
        const cv::Mat& c = spec.cells[z][y][x];
        LS_CHECK(c.empty() || c.type() == CV_8UC3, "grid: cell (z ", z, ", y ", y, ", x ", x,
                 ") is not 8-bit RGB (CV_8UC3), got OpenCV type ", c.type());
      }
    }
  }
}

cv::Size first_present_size(const GridCells& cells, const cv::Size& fallback) {
  for (const auto& block : cells)
    for (const auto& row : block)
      for (const cv::Mat& c : row)
        if (!c.empty()) return c.size();
  return fallback;
}

// Collects the vertical bands: each after the previous one plus the gap.
class BandStack {
 public:
  BandStack(int top, int gap) : y_(top), gap_(gap) {}
  int add(int height) {
    if (!first_) y_ += gap_;
    first_ = false;
    const int top = y_;
    y_ += height;
    return top;
  }
  void skip(int extra) { y_ += extra; }
  int bottom() const { return y_; }

 private:
  int y_;
  int gap_;
  bool first_ = true;
};

struct Measure {
  const TextRenderer& text;
  const GridStyle& style;
  int width(const std::string& s, FontWeight w, int px) const {
    return static_cast<int>(std::ceil(text.width(s, w, px)));
  }
  std::vector<std::string> wrap(const std::string& s, FontWeight w, int px, int max_w) const {
    return text.wrap(s, w, px, max_w, style.max_label_lines);
  }
};

int max_width(const Measure& m, const std::vector<std::string>& labels, int px) {
  int w = 0;
  for (const std::string& s : labels) w = std::max(w, m.width(s, FontWeight::kRegular, px));
  return w;
}

// Column and row pitches, label column width and the horizontal placement.
void lay_out_columns(const GridSpec& spec, const Measure& m, GridGeometry& g, int& grid_x,
                     int& content_w) {
  const GridStyle& s = spec.style;
  const int p = s.label_pad;
  g.col_w = std::max(g.cell.width,
                     std::min(max_width(m, spec.x.labels, s.font_px) + 2 * p, s.col_label_max_w));
  const bool row_labels = !spec.y.labels.empty() || !spec.y.title.empty();
  g.row_label_w = row_labels
      ? std::min(std::max(max_width(m, spec.y.labels, s.font_px),
                          m.width(spec.y.title, FontWeight::kBold, s.font_px)) + 2 * p,
                 s.row_label_max_w)
      : 0;
  size_t most_lines = 0;
  for (const std::string& label : spec.y.labels)
    most_lines = std::max(most_lines,
                          m.wrap(label, FontWeight::kRegular, s.font_px, g.row_label_w - 2 * p).size());
  g.row_h = g.cell.height;
  if (most_lines > 0)
    g.row_h = std::max(g.row_h, static_cast<int>(most_lines) * line_height(s.font_px) + 2 * p);
  const int label_part = g.row_label_w > 0 ? g.row_label_w + s.gap : 0;
  const int grid_w = label_part + g.nx * g.col_w + (g.nx - 1) * s.gap;
  content_w = grid_w;
  if (!spec.title.empty())
    content_w = std::max(content_w, std::min(m.width(spec.title, FontWeight::kBold, s.title_px),
                                             s.title_min_w));
  grid_x = s.margin + (content_w - grid_w) / 2;
  g.cols_x0 = grid_x + label_part;
  g.size.width = 2 * s.margin + content_w;
}

void add_text(GridGeometry& g, const cv::Rect& box, std::vector<std::string> lines,
              FontWeight weight, int px, Align h, Align v) {
  if (lines.empty() || box.width <= 0 || box.height <= 0) return;
  g.texts.push_back(GridText{box, std::move(lines), weight, px, h, v});
}

// Title, x title and the header band (column labels + y title in the corner).
void lay_out_header(const GridSpec& spec, const Measure& m, GridGeometry& g, BandStack& bands,
                    int grid_x, int content_w) {
  const GridStyle& s = spec.style;
  const int p = s.label_pad, L = line_height(s.font_px);
  const FontWeight bold = FontWeight::kBold;
  auto title = m.wrap(spec.title, bold, s.title_px, content_w);
  if (!title.empty()) {
    const int h = static_cast<int>(title.size()) * line_height(s.title_px);
    add_text(g, {s.margin, bands.add(h), content_w, h}, title, bold, s.title_px, Align::kCenter,
             Align::kCenter);
  }
  const int span = g.nx * g.col_w + (g.nx - 1) * s.gap;
  auto x_title = m.wrap(spec.x.title, bold, s.font_px, span);
  if (!x_title.empty()) {
    const int h = static_cast<int>(x_title.size()) * L;
    add_text(g, {g.cols_x0, bands.add(h), span, h}, x_title, bold, s.font_px, Align::kCenter,
             Align::kCenter);
  }
  std::vector<std::vector<std::string>> col_lines;
  size_t most = 0;
  for (const std::string& label : spec.x.labels) {
    col_lines.push_back(m.wrap(label, FontWeight::kRegular, s.font_px, g.col_w - 2 * p));
    most = std::max(most, col_lines.back().size());
  }
  std::vector<std::string> y_title;
  if (g.row_label_w > 0) y_title = m.wrap(spec.y.title, bold, s.font_px, g.row_label_w - 2 * p);
  most = std::max(most, y_title.size());
  if (most == 0) return;
  const int h = static_cast<int>(most) * L;
  const int top = bands.add(h);
  for (int x = 0; x < static_cast<int>(col_lines.size()); ++x)
    add_text(g, {g.cols_x0 + x * (g.col_w + s.gap) + p, top, g.col_w - 2 * p, h}, col_lines[x],
             FontWeight::kRegular, s.font_px, Align::kCenter, Align::kEnd);
  add_text(g, {grid_x + p, top, g.row_label_w - 2 * p, h}, y_title, bold, s.font_px,
           Align::kCenter, Align::kEnd);
}

// Each block: its z heading (when there is a z axis), then the rows with their labels.
void lay_out_blocks(const GridSpec& spec, const Measure& m, GridGeometry& g, BandStack& bands,
                    int grid_x, int content_w) {
  const GridStyle& s = spec.style;
  const int p = s.label_pad;
  for (int z = 0; z < g.nz; ++z) {
    if (z > 0) bands.skip(s.block_gap);
    if (spec.z) {
      g.rules.push_back({s.margin, bands.add(1), content_w, 1});
      const std::string& value = spec.z->labels[z];
      const std::string heading = spec.z->title.empty() ? value : spec.z->title + ": " + value;
      auto lines = m.wrap(heading, FontWeight::kBold, s.font_px, content_w);
      if (!lines.empty()) {
        const int h = static_cast<int>(lines.size()) * line_height(s.font_px);
        add_text(g, {s.margin, bands.add(h), content_w, h}, lines, FontWeight::kBold, s.font_px,
                 Align::kStart, Align::kCenter);
      }
    }
    const int top = bands.add(g.ny * g.row_h + (g.ny - 1) * s.gap);
    g.rows_y0.push_back(top);
    for (int y = 0; y < static_cast<int>(spec.y.labels.size()); ++y)
      add_text(g, {grid_x + p, top + y * (g.row_h + s.gap), g.row_label_w - 2 * p, g.row_h},
               m.wrap(spec.y.labels[y], FontWeight::kRegular, s.font_px, g.row_label_w - 2 * p),
               FontWeight::kRegular, s.font_px, Align::kCenter, Align::kCenter);
  }
}

void draw_placeholder(cv::Mat& canvas, const cv::Rect& rect, const std::string& mark,
                      const TextRenderer& text) {
  canvas(rect).setTo(cv::Scalar(kPlaceholderFill[0], kPlaceholderFill[1], kPlaceholderFill[2]));
  cv::rectangle(canvas, rect, cv::Scalar(kPlaceholderBorder[0], kPlaceholderBorder[1],
                                         kPlaceholderBorder[2]), 1);
  if (mark.empty() || rect.width < 3 || rect.height < 3) return;
  // The mark scales with the cell (1/8 of its width) but never below the legible 14 px.
  int px = std::clamp(rect.width / 8, 14, 40);
  while (px > 14 && text.width(mark, FontWeight::kRegular, px) > rect.width - 8) --px;
  const cv::Rect inner(rect.x + 1, rect.y + 1, rect.width - 2, rect.height - 2);
  text.draw(canvas, inner, {mark}, FontWeight::kRegular, px, Align::kCenter, Align::kCenter,
            kPlaceholderInk);
}

}  // namespace

GridGeometry grid_geometry(const GridSpec& spec, const TextRenderer& text) {
  const GridStyle& s = spec.style;
  check_style(s);
  GridGeometry g;
  g.nx = count_or_one(spec.x.labels);
  g.ny = count_or_one(spec.y.labels);
  g.nz = spec.z ? static_cast<int>(spec.z->labels.size()) : 1;
  check_cells(spec, g.nx, g.ny, g.nz);
  g.cell = first_present_size(spec.cells, s.empty_cell);
  g.gap = s.gap;
  const Measure m{text, s};
  int grid_x = 0, content_w = 0;
  lay_out_columns(spec, m, g, grid_x, content_w);
  BandStack bands(s.margin, s.gap);
  lay_out_header(spec, m, g, bands, grid_x, content_w);
  lay_out_blocks(spec, m, g, bands, grid_x, content_w);
  g.size.height = bands.bottom() + s.margin;
  return g;
}

GridGeometry grid_geometry(const GridSpec& spec) {
  const TextRenderer text(spec.style.fonts);
  return grid_geometry(spec, text);
}

cv::Rect slot_rect(const GridGeometry& g, int z, int y, int x) {
  LS_CHECK(z >= 0 && z < g.nz && y >= 0 && y < g.ny && x >= 0 && x < g.nx, "grid: cell (z ", z,
           ", y ", y, ", x ", x, ") is outside the ", g.nz, "x", g.ny, "x", g.nx, " (z, y, x) grid");
  LS_CHECK(static_cast<int>(g.rows_y0.size()) == g.nz, "grid: geometry without block positions");
  return {g.cols_x0 + x * (g.col_w + g.gap), g.rows_y0[z] + y * (g.row_h + g.gap), g.col_w,
          g.row_h};
}

cv::Rect cell_rect(const GridGeometry& g, int z, int y, int x) {
  const cv::Rect slot = slot_rect(g, z, y, x);
  return {slot.x + (g.col_w - g.cell.width) / 2, slot.y + (g.row_h - g.cell.height) / 2,
          g.cell.width, g.cell.height};
}

cv::Rect cell_rect(const GridSpec& spec, int z, int y, int x) {
  return cell_rect(grid_geometry(spec), z, y, x);
}

cv::Mat render_grid(const GridSpec& spec) {
  const TextRenderer text(spec.style.fonts);
  const GridGeometry g = grid_geometry(spec, text);
  cv::Mat canvas(g.size, CV_8UC3, cv::Scalar(255, 255, 255));
  for (const cv::Rect& r : g.rules) canvas(r).setTo(cv::Scalar(kRule[0], kRule[1], kRule[2]));
  for (const GridText& t : g.texts)
    text.draw(canvas, t.box, t.lines, t.weight, t.px, t.h_align, t.v_align);
  for (int z = 0; z < g.nz; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        const cv::Mat& cell = spec.cells[z][y][x];
        const cv::Rect rect = cell_rect(g, z, y, x);
        if (cell.empty()) draw_placeholder(canvas, rect, spec.style.placeholder, text);
        else if (cell.size() == g.cell) cell.copyTo(canvas(rect));
        else io::resize_image(cell, g.cell.width, g.cell.height).copyTo(canvas(rect));
      }
  return canvas;
}

std::vector<uint8_t> render_grid_png(const GridSpec& spec) {
  return io::encode_image(".png", render_grid(spec));
}

}  // namespace ls::sheet
