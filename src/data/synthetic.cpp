// Synthetic dataset generator: one seeded description per image (ls::core::Rng stream per
// (seed, reg?, index)), drawn with OpenCV's anti-aliased primitives, captioned from the same
// words, written with io::write_image / write_file_atomic, plus the kohya dataset TOML.
#include "data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/strings.h"
#include "core/rng.h"
#include "io/image.h"

namespace ls::data {
namespace {

namespace fs = std::filesystem;

struct NamedColor {
  const char* name;
  std::array<uint8_t, 3> rgb;
};
constexpr NamedColor kColors[] = {
    {"red", {230, 25, 25}},     {"green", {20, 160, 50}},   {"blue", {25, 60, 220}},
    {"yellow", {245, 215, 20}}, {"purple", {130, 40, 170}}, {"orange", {250, 130, 10}},
    {"white", {255, 255, 255}}, {"black", {0, 0, 0}}};
constexpr int kNumColors = 8;
constexpr const char* kShapes[] = {"circle", "square", "triangle", "star", "ring", "cross"};
constexpr const char* kSizes[] = {"small", "medium", "large"};
constexpr double kRadiusOfSize[] = {0.12, 0.2, 0.3};  // x the short side
constexpr const char* kPositions[] = {"centered", "top left", "top right", "bottom left", "bottom right"};
constexpr int kShift = 4;  // sub-pixel bits for the drawing calls
constexpr double kRingWidth = 0.35;  // x radius

int pick_color_except(core::Rng& rng, std::initializer_list<int> taken) {
  while (true) {
    const int c = static_cast<int>(rng.below(kNumColors));
    if (std::find(taken.begin(), taken.end(), c) == taken.end()) return c;
  }
}

// Everything random about image `index`, in a fixed draw order.
SyntheticImage describe(const SyntheticOptions& o, int index, bool is_reg) {
  core::Rng rng(o.seed, {core::purpose_id("synthetic"), is_reg ? 1u : 0u, static_cast<uint64_t>(index)});
  SyntheticImage im;
  im.is_reg = is_reg;
  const int a = static_cast<int>(rng.range(o.min_side, o.max_side));
  const int b = static_cast<int>(rng.range(o.min_side, o.max_side));
  const int lo = std::min(a, b), hi = std::max(a, b);
  switch (index % 3) {  // landscape, portrait, square in turn: several buckets in any dozen
    case 0: im.width = hi; im.height = lo; break;
    case 1: im.width = lo; im.height = hi; break;
    default: im.width = im.height = lo; break;
  }
  im.shape = kShapes[rng.below(6)];
  const int color = static_cast<int>(rng.below(kNumColors));
  im.color = kColors[color].name;
  im.rgb = kColors[color].rgb;
  const int size = static_cast<int>(rng.below(3));
  im.size = kSizes[size];
  const int position = static_cast<int>(rng.below(5));
  im.position = kPositions[position];
  const bool gradient = rng.below(2) == 1;
  const int c1 = pick_color_except(rng, {color});
  im.background_from = im.background_to = kColors[c1].rgb;
  im.background = kColors[c1].name;
  if (gradient) {
    const int c2 = pick_color_except(rng, {color, c1});
    im.background_to = kColors[c2].rgb;
    im.gradient_vertical = rng.below(2) == 1;
    im.background = std::string(kColors[c1].name) + " and " + kColors[c2].name + " gradient";
  }

  const int short_side = std::min(im.width, im.height);
  im.radius = static_cast<int>(std::lround(kRadiusOfSize[size] * short_side));
  const int margin = im.radius + short_side / 20;
  const bool left = im.position.find("left") != std::string::npos;
  const bool right = im.position.find("right") != std::string::npos;
  const bool top = im.position.find("top") != std::string::npos;
  const bool bottom = im.position.find("bottom") != std::string::npos;
  im.center_x = left ? margin : right ? im.width - 1 - margin : im.width / 2;
  im.center_y = top ? margin : bottom ? im.height - 1 - margin : im.height / 2;
  im.probe_x = im.center_x;
  im.probe_y = im.center_y;
  if (im.shape == "ring") {
    const double inner = im.radius * (1 - kRingWidth);
    im.probe_x = im.center_x + static_cast<int>(std::lround((inner + im.radius) / 2));
  }

  std::string words = im.color + " " + im.shape + ", " + im.size + ", " + im.background +
                      " background, " + im.position;
  im.caption = is_reg ? words : o.class_tokens + ", " + words;
  return im;
}

cv::Point fixed(double x, double y) {
  return {static_cast<int>(std::lround(x * (1 << kShift))), static_cast<int>(std::lround(y * (1 << kShift)))};
}

std::vector<cv::Point> polygon(const SyntheticImage& im, const std::vector<std::pair<double, double>>& unit) {
  std::vector<cv::Point> pts;
  for (const auto& [x, y] : unit) pts.push_back(fixed(im.center_x + x * im.radius, im.center_y + y * im.radius));
  return pts;
}

std::vector<std::pair<double, double>> star_points() {
  std::vector<std::pair<double, double>> pts;
  for (int k = 0; k < 10; ++k) {
    const double angle = -M_PI / 2 + k * M_PI / 5, r = k % 2 == 0 ? 1.0 : 0.45;
    pts.emplace_back(r * std::cos(angle), r * std::sin(angle));
  }
  return pts;
}

void fill_background(cv::Mat& img, const SyntheticImage& im) {
  const bool vertical = im.gradient_vertical;
  const int n = vertical ? img.rows : img.cols;
  const auto& from = im.background_from;
  const auto& to = im.background_to;
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      const double t = n > 1 ? static_cast<double>(vertical ? y : x) / (n - 1) : 0.0;
      cv::Vec3b& px = img.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) px[c] = static_cast<uint8_t>(std::lround(from[c] + (to[c] - from[c]) * t));
    }
}

std::string subset_dir_name(int repeats, const std::string& class_tokens) {
  return std::to_string(repeats) + "_" + class_tokens;
}

std::string file_stem(int index) {
  char name[16];
  std::snprintf(name, sizeof name, "%04d", index);
  return name;
}

void check_options(const SyntheticOptions& o) {
  LS_CHECK(o.images >= 1, "synthetic dataset: images must be >= 1, got ", o.images);
  LS_CHECK(o.reg_images >= 0, "synthetic dataset: reg_images must be >= 0, got ", o.reg_images);
  LS_CHECK(o.repeats >= 1 && o.reg_repeats >= 1, "synthetic dataset: repeats and reg_repeats must be >= 1");
  LS_CHECK(!o.class_tokens.empty() && o.class_tokens.find_first_of("/\\") == std::string::npos,
           "synthetic dataset: class_tokens '", o.class_tokens, "' must be non-empty without slashes");
  LS_CHECK(o.min_side >= 64 && o.min_side <= o.max_side, "synthetic dataset: need 64 <= min_side <= max_side, got ",
           o.min_side, " and ", o.max_side);
  LS_CHECK(o.format == "png" || o.format == "jpg" || o.format == "webp", "synthetic dataset: format '",
           o.format, "' is not one of png, jpg, webp");
  LS_CHECK(o.caption_extension.size() >= 2 && o.caption_extension[0] == '.' &&
               o.caption_extension != "." + o.format,
           "synthetic dataset: caption_extension '", o.caption_extension, "' must look like .txt or .caption");
  LS_CHECK(o.resolution >= 64 && o.batch_size >= 1, "synthetic dataset: resolution must be >= 64 and batch_size >= 1");
}

// The generator owns OUT/img and OUT/reg: anything there it would not write is an error.
void check_only_ours(const fs::path& dir, const std::set<std::string>& ours) {
  if (!fs::exists(dir)) return;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    LS_CHECK(ours.count(name), entry.path().string(),
             ": not written by the synthetic generator with these options; choose an empty output "
             "folder or remove it");
  }
}

// Writes one subset; returns its absolute folder.
fs::path write_subset(const fs::path& parent, int repeats, int count, bool is_reg, const SyntheticOptions& o,
                      SyntheticDataset& out) {
  const std::string folder = subset_dir_name(repeats, o.class_tokens);
  const fs::path dir = parent / folder;
  check_only_ours(parent, {folder});
  std::set<std::string> files;
  for (int i = 0; i < count; ++i) {
    files.insert(file_stem(i) + "." + o.format);
    files.insert(file_stem(i) + o.caption_extension);
  }
  check_only_ours(dir, files);
  fs::create_directories(dir);
  for (int i = 0; i < count; ++i) {
    SyntheticImage im = describe_synthetic_image(o, i, is_reg);
    im.image_path = (dir / (file_stem(i) + "." + o.format)).string();
    im.caption_path = (dir / (file_stem(i) + o.caption_extension)).string();
    io::write_image(im.image_path, render_synthetic_image(im));
    core::write_file_atomic(im.caption_path, im.caption + "\n");
    out.images.push_back(im.image_path);
    out.items.push_back(std::move(im));
  }
  return dir;
}

std::string dataset_toml(const SyntheticOptions& o, const std::string& train_dir, const std::string& reg_dir) {
  std::ostringstream t;
  t << "# Synthetic lorastudio dataset (kohya sd-scripts dataset config format).\n"
    << "[general]\n"
    << "caption_extension = " << core::toml_quote(o.caption_extension) << "\n\n"
    << "[[datasets]]\n"
    << "resolution = " << o.resolution << "\n"
    << "batch_size = " << o.batch_size << "\n"
    << "enable_bucket = true\n"
    << "min_bucket_reso = " << std::min(256, o.resolution) << "\n"
    << "max_bucket_reso = " << std::max(1024, o.resolution) << "\n"
    << "bucket_reso_steps = 64\n\n"
    << "  [[datasets.subsets]]\n"
    << "  image_dir = " << core::toml_quote(train_dir) << "\n"
    << "  num_repeats = " << o.repeats << "\n"
    << "  class_tokens = " << core::toml_quote(o.class_tokens) << "\n";
  if (!reg_dir.empty())
    t << "\n  [[datasets.subsets]]\n"
      << "  image_dir = " << core::toml_quote(reg_dir) << "\n"
      << "  is_reg = true\n"
      << "  num_repeats = " << o.reg_repeats << "\n";
  return t.str();
}

}  // namespace

SyntheticImage describe_synthetic_image(const SyntheticOptions& options, int index, bool is_reg) {
  return describe(options, index, is_reg);
}

cv::Mat render_synthetic_image(const SyntheticImage& im) {
  LS_CHECK(im.width > 0 && im.height > 0 && im.radius > 0, "render_synthetic_image: empty description");
  cv::Mat img(im.height, im.width, CV_8UC3);
  fill_background(img, im);
  const cv::Scalar color(im.rgb[0], im.rgb[1], im.rgb[2]);
  const double r = im.radius;
  const cv::Point center = fixed(im.center_x, im.center_y);
  if (im.shape == "circle") {
    cv::circle(img, center, static_cast<int>(std::lround(r * (1 << kShift))), color, cv::FILLED, cv::LINE_AA, kShift);
  } else if (im.shape == "ring") {
    const int width = static_cast<int>(std::lround(r * kRingWidth));
    const double mid = r - width / 2.0;
    cv::circle(img, center, static_cast<int>(std::lround(mid * (1 << kShift))), color, width, cv::LINE_AA, kShift);
  } else if (im.shape == "square") {
    const double s = 0.8;
    cv::fillConvexPoly(img, polygon(im, {{-s, -s}, {s, -s}, {s, s}, {-s, s}}), color, cv::LINE_AA, kShift);
  } else if (im.shape == "triangle") {  // centroid at the centre
    const double c = std::cos(M_PI / 6), s = std::sin(M_PI / 6);
    cv::fillConvexPoly(img, polygon(im, {{0, -1}, {c, s}, {-c, s}}), color, cv::LINE_AA, kShift);
  } else if (im.shape == "star") {
    const std::vector<std::vector<cv::Point>> pts = {polygon(im, star_points())};
    cv::fillPoly(img, pts, color, cv::LINE_AA, kShift);
  } else if (im.shape == "cross") {
    const double w = 0.3;
    const std::vector<std::vector<cv::Point>> pts = {polygon(
        im, {{-w, -1}, {w, -1}, {w, -w}, {1, -w}, {1, w}, {w, w}, {w, 1}, {-w, 1}, {-w, w}, {-1, w}, {-1, -w}, {-w, -w}})};
    cv::fillPoly(img, pts, color, cv::LINE_AA, kShift);
  } else {
    LS_FAIL("render_synthetic_image: unknown shape '", im.shape, "'");
  }
  return img;
}

SyntheticDataset make_synthetic_dataset(const std::string& out_dir, const SyntheticOptions& o) {
  check_options(o);
  const fs::path root = fs::absolute(out_dir).lexically_normal();
  SyntheticDataset out;
  out.train_dir = write_subset(root / "img", o.repeats, o.images, false, o, out).string();
  if (o.reg_images > 0) out.reg_dir = write_subset(root / "reg", o.reg_repeats, o.reg_images, true, o, out).string();
  else check_only_ours(root / "reg", {});
  out.config_toml = (root / "dataset.toml").string();
  core::write_file_atomic(out.config_toml, dataset_toml(o, out.train_dir, out.reg_dir));
  return out;
}

}  // namespace ls::data
