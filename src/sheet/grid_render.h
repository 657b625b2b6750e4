// The labelled contact-sheet grid PNG (docs/sheet-format.md: x = columns, y = rows, z = blocks
// stacked vertically; each page is a separate render_grid call). Plays the role of A1111's
// XYZ-plot grid (modules/images.py draw_grid_annotations) with wrapped, never-shrunk labels.
//
// Layout (all integers, px). W x H = size of the first present cell (style.empty_cell when none);
// m = margin, g = gap, p = label_pad, L = line_height(font_px), Lt = line_height(title_px);
// w(s) = ceil(text width), wb(s) = same in bold; lines(s, width) = wrapped line count (<= max_label_lines).
//   nx = max(1, #x labels), ny = max(1, #y labels), nz = z ? #z labels : 1
//   col_w = max(W, min(max_i w(x_i) + 2p, col_label_max_w))        column slot width
//   R     = y labels or y title ? min(max(max_j w(y_j), wb(y title)) + 2p, row_label_max_w) : 0
//   row_h = max(H, max_j lines(y_j, R - 2p) * L + 2p)               row slot height
//   grid_w = (R ? R + g : 0) + nx col_w + (nx - 1) g
//   content_w = max(grid_w, title ? min(wb_title(title), title_min_w) : 0);  width = 2m + content_w
//   The grid is centred in content_w: grid_x = m + (content_w - grid_w) / 2.
// Vertically the image is a stack of bands joined by g, inside the margin m:
//   title     lines(title, content_w) * Lt                          (absent when empty)
//   x title   lines(x title, columns span) * L, bold, centred over the columns
//   header    max(max_i lines(x_i, col_w - 2p), lines(y title, R - 2p)) * L: column labels and,
//             in the corner above the row labels, the y title in bold; bottom-aligned
//   per block k: with a z axis, block_gap more space when k > 0, a 1 px grey rule across
//             content_w, and the heading lines("<z title>: <z_k>", content_w) * L in bold;
//             then ny rows: ny row_h + (ny - 1) g
//   height = 2m + sum(band heights) + g (bands - 1) + block_gap (nz - 1)
// Column c's slot starts at x = grid_x + (R ? R + g : 0) + c (col_w + g); row r of block k at
// y = rows_y0[k] + r (row_h + g); the cell is centred in its slot (cell_rect). Labels are centred
// in their slot minus p on each side. Missing cells (empty Mat) are a light-grey box with a grey
// border and style.placeholder ("missing" / "pending") in the middle.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "sheet/text_render.h"

namespace ls::sheet {

struct GridAxis {
  std::string title;                 // e.g. "LoRA file"; may be empty
  std::vector<std::string> labels;   // one per column / row / block; empty = the axis is absent
};

struct GridStyle {
  int margin = 24;
  int gap = 8;
  int block_gap = 24;          // extra space above each z heading after the first
  int label_pad = 6;
  int font_px = 16;            // labels and headings; >= 14 so text stays legible at 64 px cells
  int title_px = 22;
  int col_label_max_w = 200;   // columns of narrow cells widen up to this for their labels
  int row_label_max_w = 240;
  int title_min_w = 480;       // a title widens a narrow grid up to this
  int max_label_lines = 4;     // longer labels end in "…"
  cv::Size empty_cell{256, 256};  // cell size when no cell is present yet
  std::string placeholder = "missing";
  FontPaths fonts;
};

/// cells[z][y][x], each 8-bit RGB (CV_8UC3, R,G,B order as io::decode_image_rgb) or empty.
using GridCells = std::vector<std::vector<std::vector<cv::Mat>>>;

struct GridSpec {
  std::string title;
  GridAxis x, y;
  std::optional<GridAxis> z;
  GridCells cells;
  GridStyle style;
};

struct GridText {
  cv::Rect box;                    // ink stays inside
  std::vector<std::string> lines;  // already wrapped
  FontWeight weight = FontWeight::kRegular;
  int px = 16;
  Align h_align = Align::kCenter, v_align = Align::kCenter;
};

/// Where everything goes; computed from the spec and text measurements only.
struct GridGeometry {
  cv::Size size;                 // whole image
  cv::Size cell;                 // W x H every cell is drawn at
  int nx = 1, ny = 1, nz = 1;
  int col_w = 0, row_h = 0, row_label_w = 0;
  int gap = 0;                   // between slots: column pitch col_w + gap, row pitch row_h + gap
  int cols_x0 = 0;               // left of column 0's slot
  std::vector<int> rows_y0;      // top of row 0's slot in each block
  std::vector<GridText> texts;   // every label, title and heading
  std::vector<cv::Rect> rules;   // 1 px grey (208) lines above the z headings
};

/// Checks the spec (axis sizes vs cells, types, style limits) and lays it out.
GridGeometry grid_geometry(const GridSpec& spec, const TextRenderer& text);
GridGeometry grid_geometry(const GridSpec& spec);  // loads spec.style.fonts

/// The slot (col_w x row_h) of cell (z, y, x) and the cell's W x H rectangle centred in it.
cv::Rect slot_rect(const GridGeometry& geometry, int z, int y, int x);
cv::Rect cell_rect(const GridGeometry& geometry, int z, int y, int x);
cv::Rect cell_rect(const GridSpec& spec, int z, int y, int x);

/// The grid as 8-bit RGB: white background, black antialiased text, cells copied pixel for pixel
/// (resized with io::resize_image first when their size differs from W x H).
cv::Mat render_grid(const GridSpec& spec);
/// render_grid encoded with io::encode_image(".png").
std::vector<uint8_t> render_grid_png(const GridSpec& spec);

}  // namespace ls::sheet
