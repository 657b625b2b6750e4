// sheet/grid_render + sheet/text_render: image size equals the layout formula documented in
// grid_render.h (recomputed here from measured text), cells copied bit-exactly at cell_rect,
// every label box holds dark ink while everything outside labels and cells is pure white,
// wrapping and ellipsis, placeholders, and the errors for bad specs and a missing font.
#include <cmath>
#include <cstdlib>
#include <fstream>

#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "io/image.h"
#include "sheet/grid_render.h"
#include "support/support.h"

namespace {

using ls::sheet::Align;
using ls::sheet::FontWeight;
using ls::sheet::GridGeometry;
using ls::sheet::GridSpec;
using ls::sheet::TextRenderer;

cv::Mat solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  return cv::Mat(h, w, CV_8UC3, cv::Scalar(r, g, b));
}

cv::Mat noise(int w, int h, uint64_t seed) {
  ls::core::Rng rng(seed, {ls::core::purpose_id("grid_test")});
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) m.at<cv::Vec3b>(y, x)[c] = static_cast<uint8_t>(rng.below(256));
  return m;
}

// ny x nx cells of noise in each of nz blocks.
ls::sheet::GridCells noise_cells(int nz, int ny, int nx, int w, int h) {
  ls::sheet::GridCells cells(nz, std::vector<std::vector<cv::Mat>>(ny, std::vector<cv::Mat>(nx)));
  uint64_t seed = 1;
  for (auto& block : cells)
    for (auto& row : block)
      for (cv::Mat& c : row) c = noise(w, h, seed++);
  return cells;
}

int ceil_width(const TextRenderer& t, const std::string& s, FontWeight w, int px) {
  return static_cast<int>(std::ceil(t.width(s, w, px)));
}

bool images_equal(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.type() != b.type()) return false;
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  return cv::countNonZero(diff.reshape(1)) == 0;
}

// The sample from the brief: 2 LoRA files x 3 strengths, 2 seed blocks, 64 px solid cells.
GridSpec sample_spec() {
  GridSpec spec;
  spec.title = "my_character LoRA: epochs x strength";
  spec.x = {"LoRA file", {"my_character-000004", "my_character-000008"}};
  spec.y = {"strength", {"0.5", "0.75", "1"}};
  spec.z = ls::sheet::GridAxis{"seed", {"1234", "5678"}};
  const cv::Vec3b colours[6] = {{220, 80, 60},  {60, 160, 90},  {70, 110, 210},
                                {230, 190, 40}, {150, 80, 190}, {40, 170, 180}};
  spec.cells.assign(2, std::vector<std::vector<cv::Mat>>(3, std::vector<cv::Mat>(2)));
  for (int z = 0; z < 2; ++z)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 2; ++x) {
        const cv::Vec3b c = colours[(y * 2 + x + z) % 6];
        spec.cells[z][y][x] = solid(64, 64, c[0], c[1], c[2]);
      }
  spec.cells[1][2][1] = cv::Mat();  // not generated yet
  spec.style.placeholder = "pending";
  return spec;
}

TEST(TextRender, WrapsAtSpacesBreaksLongWordsAndEllipsizes) {
  const TextRenderer t;
  const int px = 16;
  const double one_line = t.width("alpha beta", FontWeight::kRegular, px);
  EXPECT_EQ(t.wrap("alpha beta", FontWeight::kRegular, px, one_line, 4),
            (std::vector<std::string>{"alpha beta"}));
  EXPECT_EQ(t.wrap("alpha beta", FontWeight::kRegular, px, one_line - 1, 4),
            (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ(t.wrap("  alpha \n beta  ", FontWeight::kRegular, px, 1000, 4),
            (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_TRUE(t.wrap(" \n ", FontWeight::kRegular, px, 1000, 4).empty());
  // A word wider than the line splits after punctuation, then between characters; all fit.
  const std::string word = "my_character_lora_final_v2-000010";
  const auto pieces = t.wrap(word, FontWeight::kRegular, px, 80, 10);
  ASSERT_GE(pieces.size(), 3u);
  std::string joined;
  for (const auto& piece : pieces) {
    EXPECT_LE(t.width(piece, FontWeight::kRegular, px), 80.0) << piece;
    joined += piece;
  }
  EXPECT_EQ(joined, word);
  EXPECT_EQ(pieces[0], "my_");  // the breaks come after punctuation first
  const std::string name = "my_character-000004";
  EXPECT_EQ(t.wrap(name, FontWeight::kRegular, px, t.width("my_character-", FontWeight::kRegular, px), 4),
            (std::vector<std::string>{"my_character-", "000004"}));
  EXPECT_EQ(t.wrap("x abcdefghijklmabcdefghijklmab", FontWeight::kRegular, px,
                   t.width("abcdefghijklm", FontWeight::kRegular, px), 4),
            (std::vector<std::string>{"x", "abcdefghijklm", "abcdefghijklm", "ab"}));
  // Past max_lines: exactly max_lines lines, the last one ending in U+2026 and still fitting.
  const std::string prompt =
      "masterpiece, best quality, a portrait of a woman with red hair standing in a field of "
      "sunflowers at golden hour, detailed eyes, soft light, bokeh, 85mm photograph";
  const auto lines = t.wrap(prompt, FontWeight::kRegular, px, 150, 4);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[3].substr(lines[3].size() - 3), "\xE2\x80\xA6");
  for (const auto& l : lines) EXPECT_LE(t.width(l, FontWeight::kRegular, px), 150.0) << l;
  // Invalid UTF-8 is measured (as U+FFFD) rather than breaking the cairo context.
  EXPECT_GT(t.width("bad \xFF byte", FontWeight::kRegular, px), 0.0);
  EXPECT_GT(t.width("after", FontWeight::kRegular, px), 0.0);
  EXPECT_GT(t.width("Wide", FontWeight::kBold, px), t.width("Wide", FontWeight::kRegular, px));
  EXPECT_EQ(ls::sheet::line_height(16), 20);
  EXPECT_EQ(ls::sheet::line_height(14), 18);
}

TEST(GridRender, SizeFollowsTheLayoutFormulaWithWideCells) {
  GridSpec spec;
  spec.x = {"X", {"a", "b", "c"}};
  spec.y = {"Y", {"1", "2"}};
  spec.cells = noise_cells(1, 2, 3, 100, 80);
  const auto& s = spec.style;
  const TextRenderer t;
  const GridGeometry g = ls::sheet::grid_geometry(spec, t);
  const int L = ls::sheet::line_height(s.font_px), p = s.label_pad;
  const int R = std::max({ceil_width(t, "1", FontWeight::kRegular, s.font_px),
                          ceil_width(t, "2", FontWeight::kRegular, s.font_px),
                          ceil_width(t, "Y", FontWeight::kBold, s.font_px)}) + 2 * p;
  EXPECT_EQ(g.col_w, 100);  // labels narrower than the cells: columns are the cells
  EXPECT_EQ(g.row_h, 80);
  EXPECT_EQ(g.row_label_w, R);
  EXPECT_EQ(g.size.width, 2 * s.margin + R + s.gap + 3 * 100 + 2 * s.gap);
  // bands: x title (L), header (L), rows (2 * 80 + g), joined by 2 gaps
  EXPECT_EQ(g.size.height, 2 * s.margin + L + L + 2 * 80 + s.gap + 2 * s.gap);
  const cv::Mat img = ls::sheet::render_grid(spec);
  EXPECT_EQ(img.size(), g.size);
  EXPECT_EQ(ls::sheet::cell_rect(g, 0, 1, 2),
            cv::Rect(s.margin + R + s.gap + 2 * (100 + s.gap), s.margin + 2 * (L + s.gap) + 80 + s.gap,
                     100, 80));
}

TEST(GridRender, SizeFollowsTheLayoutFormulaWithTinyCellsTitleAndBlocks) {
  GridSpec spec;
  spec.title = "Sweep";
  spec.x = {"", {"name-000001", "a much longer label that has to wrap over lines"}};
  spec.y = {"", {"0.5", "1"}};
  spec.z = ls::sheet::GridAxis{"seed", {"1", "2", "3"}};
  spec.cells = noise_cells(3, 2, 2, 64, 64);
  const auto& s = spec.style;
  const TextRenderer t;
  const GridGeometry g = ls::sheet::grid_geometry(spec, t);
  const int L = ls::sheet::line_height(s.font_px), p = s.label_pad;
  EXPECT_EQ(g.col_w, s.col_label_max_w);  // the long label caps the column width
  const auto long_lines = t.wrap(spec.x.labels[1], FontWeight::kRegular, s.font_px,
                                 g.col_w - 2 * p, s.max_label_lines);
  ASSERT_GE(long_lines.size(), 2u);
  const int R = ceil_width(t, "0.5", FontWeight::kRegular, s.font_px) + 2 * p;
  const int grid_w = R + s.gap + 2 * g.col_w + s.gap;
  const int content_w =
      std::max(grid_w, std::min(ceil_width(t, "Sweep", FontWeight::kBold, s.title_px), s.title_min_w));
  EXPECT_EQ(g.size.width, 2 * s.margin + content_w);
  const int row_h = std::max(64, L + 2 * p);
  EXPECT_EQ(g.row_h, row_h);
  const int block = 1 + s.gap + L + s.gap + 2 * row_h + s.gap;  // rule, heading, rows
  const int expected_h = 2 * s.margin + ls::sheet::line_height(s.title_px) + s.gap +
                         static_cast<int>(long_lines.size()) * L + s.gap + 3 * block +
                         2 * (s.gap + s.block_gap);
  EXPECT_EQ(g.size.height, expected_h);
  ASSERT_EQ(g.rows_y0.size(), 3u);
  EXPECT_EQ(g.rows_y0[2] - g.rows_y0[1], block + s.gap + s.block_gap);
  // The 64 px cell sits centred in its wider slot.
  const cv::Rect slot = ls::sheet::slot_rect(g, 2, 1, 1), cell = ls::sheet::cell_rect(g, 2, 1, 1);
  EXPECT_EQ(cell.x - slot.x, (g.col_w - 64) / 2);
  EXPECT_EQ(cell.y - slot.y, (row_h - 64) / 2);
  EXPECT_EQ(ls::sheet::cell_rect(spec, 2, 1, 1), cell);
}

TEST(GridRender, CellsAreCopiedExactlyAndEverythingElseIsWhiteOrLabelInk) {
  GridSpec spec;
  spec.title = "Contact sheet";
  spec.x = {"LoRA", {"first-000001", "second-000002", "third"}};
  spec.y = {"strength", {"0.25", "1.0"}};
  spec.z = ls::sheet::GridAxis{"seed", {"7", "8"}};
  spec.cells = noise_cells(2, 2, 3, 72, 56);
  spec.cells[1][0][2] = noise(144, 112, 99);  // another size: resized to the first cell's
  const cv::Mat img = ls::sheet::render_grid(spec);
  const GridGeometry g = ls::sheet::grid_geometry(spec);
  ASSERT_EQ(img.size(), g.size);
  ASSERT_EQ(img.type(), CV_8UC3);
  cv::Mat covered(img.size(), CV_8U, cv::Scalar(0));
  for (int z = 0; z < 2; ++z)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x) {
        const cv::Rect r = ls::sheet::cell_rect(g, z, y, x);
        const cv::Mat expected = z == 1 && y == 0 && x == 2
            ? ls::io::resize_image(spec.cells[z][y][x], 72, 56) : spec.cells[z][y][x];
        EXPECT_TRUE(images_equal(img(r), expected)) << "cell " << z << y << x;
        covered(r).setTo(1);
      }
  // Title, x title, 3 column labels, y title, 2 headings, 2 x 2 row labels.
  EXPECT_EQ(g.texts.size(), 1u + 1 + 3 + 1 + 2 + 4);
  for (const auto& t : g.texts) {
    cv::Mat gray;
    cv::cvtColor(img(t.box), gray, cv::COLOR_RGB2GRAY);
    double darkest = 255;
    cv::minMaxLoc(gray, &darkest);
    EXPECT_LT(darkest, 60) << "no dark ink in the label '" << t.lines[0] << "'";
    EXPECT_GE(t.px, 14);
    covered(t.box).setTo(1);
  }
  ASSERT_EQ(g.rules.size(), 2u);
  for (const cv::Rect& r : g.rules) {
    EXPECT_EQ(r.height, 1);
    EXPECT_EQ(cv::countNonZero(img(r).reshape(1) != 208), 0);
    covered(r).setTo(1);
  }
  int stray = 0;
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x)
      if (!covered.at<uint8_t>(y, x) && img.at<cv::Vec3b>(y, x) != cv::Vec3b(255, 255, 255)) ++stray;
  EXPECT_EQ(stray, 0) << "non-white pixels outside cells and label boxes";
  // Text is black on white: label pixels are grey levels (r == g == b).
  for (const auto& t : g.texts) {
    const cv::Mat roi = img(t.box);
    int coloured = 0;
    for (int y = 0; y < roi.rows; ++y)
      for (int x = 0; x < roi.cols; ++x) {
        const auto v = roi.at<cv::Vec3b>(y, x);
        coloured += v[0] != v[1] || v[1] != v[2];
      }
    EXPECT_EQ(coloured, 0);
  }
  // The margins hold nothing.
  const int m = spec.style.margin;
  EXPECT_FALSE(cv::Rect(0, 0, img.cols, m).empty());
  for (const cv::Rect& r : {cv::Rect(0, 0, img.cols, m), cv::Rect(0, img.rows - m, img.cols, m),
                            cv::Rect(0, 0, m, img.rows), cv::Rect(img.cols - m, 0, m, img.rows)})
    EXPECT_EQ(cv::countNonZero(covered(r)), 0) << r;
}

TEST(GridRender, LongColumnLabelWrapsIntoATallerHeader) {
  GridSpec spec;
  spec.x = {"prompt", {"a cat", "a cat"}};
  spec.cells = noise_cells(1, 1, 2, 64, 64);
  const GridGeometry short_g = ls::sheet::grid_geometry(spec);
  spec.x.labels[1] = "a photograph of a small grey cat sleeping on a windowsill in the morning sun";
  const GridGeometry long_g = ls::sheet::grid_geometry(spec);
  const int L = ls::sheet::line_height(spec.style.font_px);
  EXPECT_EQ(long_g.col_w, spec.style.col_label_max_w);
  // 4 lines (the limit, ellipsized) instead of 1.
  const auto& label = long_g.texts.back();
  ASSERT_EQ(label.lines.size(), 4u);
  EXPECT_EQ(label.box.height, 4 * L);
  EXPECT_EQ(long_g.size.height - short_g.size.height, 3 * L);
  EXPECT_EQ(long_g.rows_y0[0] - short_g.rows_y0[0], 3 * L);
  // The short label sits at the bottom of the taller band (next to its cell).
  const cv::Mat img = ls::sheet::render_grid(spec);
  const cv::Rect first = long_g.texts[1].box;
  cv::Mat gray;
  cv::cvtColor(img(first), gray, cv::COLOR_RGB2GRAY);
  EXPECT_EQ(cv::countNonZero(gray(cv::Rect(0, 0, first.width, 3 * L)) < 255), 0);
  EXPECT_GT(cv::countNonZero(gray(cv::Rect(0, 3 * L, first.width, L)) < 128), 0);
}

TEST(GridRender, MissingCellsGetThePlaceholder) {
  GridSpec spec = sample_spec();
  const cv::Mat img = ls::sheet::render_grid(spec);
  const GridGeometry g = ls::sheet::grid_geometry(spec);
  const cv::Mat cell = img(ls::sheet::cell_rect(g, 1, 2, 1));
  EXPECT_EQ(cell.at<cv::Vec3b>(0, 0), cv::Vec3b(200, 200, 200));       // border
  EXPECT_EQ(cell.at<cv::Vec3b>(63, 63), cv::Vec3b(200, 200, 200));
  EXPECT_EQ(cell.at<cv::Vec3b>(4, 4), cv::Vec3b(236, 236, 236));       // fill
  cv::Mat gray;
  cv::cvtColor(cell, gray, cv::COLOR_RGB2GRAY);
  double darkest = 255;
  cv::minMaxLoc(gray, &darkest);
  EXPECT_LE(darkest, 140);  // the "pending" mark (ink 112 at full coverage)
  EXPECT_GE(darkest, 112);
  // Its "pending" differs from a "missing" one.
  spec.style.placeholder = "missing";
  const cv::Mat other = ls::sheet::render_grid(spec);
  EXPECT_FALSE(images_equal(other(ls::sheet::cell_rect(g, 1, 2, 1)), cell));
  // No present cell at all: cells take style.empty_cell.
  GridSpec empty;
  empty.cells = {{{cv::Mat()}}};
  const GridGeometry eg = ls::sheet::grid_geometry(empty);
  EXPECT_EQ(eg.cell, empty.style.empty_cell);
  EXPECT_EQ(eg.size, cv::Size(256 + 2 * 24, 256 + 2 * 24));
}

TEST(GridRender, SampleGridRoundTripsThroughPng) {
  const GridSpec spec = sample_spec();
  const cv::Mat img = ls::sheet::render_grid(spec);
  const std::vector<uint8_t> png = ls::sheet::render_grid_png(spec);
  EXPECT_TRUE(images_equal(ls::io::decode_image_rgb(png, "grid.png"), img));
  // A second render is identical (no hidden state in the renderer).
  EXPECT_TRUE(images_equal(ls::sheet::render_grid(spec), img));
  if (const char* out = std::getenv("LS_GRID_SAMPLE")) ls::io::write_image(out, img);
}

TEST(GridRender, BadSpecsAndMissingFontsAreOneLineErrors) {
  GridSpec spec = sample_spec();
  spec.style.fonts.bold = "/nonexistent/DejaVuSans-Bold.ttf";
  std::string err = ls::test::error_of([&] { ls::sheet::render_grid(spec); });
  EXPECT_NE(err.find("/nonexistent/DejaVuSans-Bold.ttf"), std::string::npos) << err;
  EXPECT_NE(err.find("fonts-dejavu-core"), std::string::npos) << err;
  ls::test::TempDir dir;
  { std::ofstream(dir / "broken.ttf") << "not a font"; }
  spec.style.fonts.bold = (dir / "broken.ttf").string();
  err = ls::test::error_of([&] { ls::sheet::render_grid(spec); });
  EXPECT_NE(err.find("FreeType cannot read it"), std::string::npos) << err;

  spec = sample_spec();
  spec.style.font_px = 12;
  EXPECT_NE(ls::test::error_of([&] { ls::sheet::render_grid(spec); }).find(">= 14"),
            std::string::npos);
  spec = sample_spec();
  spec.cells[1].pop_back();
  EXPECT_EQ(ls::test::error_of([&] { ls::sheet::render_grid(spec); }),
            "grid: block 1 holds 2 rows but the y axis has 3 value(s)");
  spec = sample_spec();
  spec.cells[0][1][0] = cv::Mat(64, 64, CV_8UC4);
  EXPECT_NE(ls::test::error_of([&] { ls::sheet::render_grid(spec); }).find("cell (z 0, y 1, x 0)"),
            std::string::npos);
  EXPECT_NE(ls::test::error_of([&] { ls::sheet::cell_rect(sample_spec(), 0, 3, 0); })
                .find("outside the 2x3x2"),
            std::string::npos);
}

}  // namespace
