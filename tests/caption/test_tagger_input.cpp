// The WD14 tagger input against Pillow 13.0.0: the bicubic resize on hand-derived step edges and
// on Pillow's own outputs (fixtures/tagger/pillow/, make_pillow_fixtures.py), alpha over white
// for every (value, alpha) pair, and the whole pipeline on the five preprocess/ images whose
// goldens make_fixtures.py's reference_pixels() wrote; padding, channel order, errors.
#include <cstring>
#include <fstream>
#include <iostream>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include "caption/pillow_resize.h"
#include "caption/tagger_input.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "support/support.h"

namespace tagger_input_test {

namespace fs = std::filesystem;
using ls::caption::pillow_resize_bicubic;

fs::path fixture(const std::string& name) {
  return fs::path(ls::test::kSourceDir) / "tests/fixtures/tagger" / name;
}

std::vector<uint8_t> file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// uint8 [H, W, C] -> a CV_8UC(C) copy.
cv::Mat to_mat(const at::Tensor& hwc) {
  const at::Tensor dense = hwc.contiguous();
  cv::Mat out(static_cast<int>(dense.size(0)), static_cast<int>(dense.size(1)),
              CV_8UC(static_cast<int>(dense.size(2))));
  std::memcpy(out.data, dense.data_ptr<uint8_t>(), static_cast<size_t>(dense.numel()));
  return out;
}

cv::Mat row_image(const std::vector<uint8_t>& values) {
  cv::Mat row(1, static_cast<int>(values.size()), CV_8UC1);
  std::copy(values.begin(), values.end(), row.ptr<uint8_t>(0));
  return row;
}

std::vector<uint8_t> mat_values(const cv::Mat& m) {
  const cv::Mat dense = m.isContinuous() ? m : m.clone();
  return {dense.data, dense.data + dense.total() * dense.elemSize()};
}

int max_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat diff;
  cv::absdiff(a.reshape(1), b.reshape(1), diff);
  double worst = 0;
  cv::minMaxLoc(diff, nullptr, &worst);
  return static_cast<int>(worst);
}

// ---- the resize on its own

TEST(TaggerInputResize, ConstantImageStaysConstant) {
  // One output pixel's fixed-point taps sum to 2^22 up to half a unit per tap, so a constant c
  // sums to c * 2^22 + 2^21 give or take 255 * ksize / 2 (< 10^4 here): far from the 2^21 that
  // would move it to c - 1 or c + 1.
  for (int value : {0, 1, 128, 254, 255})
    for (const cv::Size& out : {cv::Size(5, 3), cv::Size(64, 64), cv::Size(101, 7), cv::Size(19, 40)})
      for (int type : {CV_8UC1, CV_8UC3}) {
        const cv::Mat in(23, 37, type, cv::Scalar::all(value));
        const cv::Mat resized = pillow_resize_bicubic(in, out.width, out.height);
        ASSERT_EQ(resized.size(), out);
        ASSERT_EQ(resized.type(), type);
        EXPECT_EQ(max_abs_diff(resized, cv::Mat(out, type, cv::Scalar::all(value))), 0)
            << value << " -> " << out;
      }
}

TEST(TaggerInputResize, SameSizeIsACopy) {
  cv::Mat in(9, 7, CV_8UC3);
  cv::randu(in, 0, 256);
  const cv::Mat out = pillow_resize_bicubic(in, 7, 9);
  EXPECT_NE(out.data, in.data);
  EXPECT_EQ(mat_values(out), mat_values(in));
}

// 8 -> 16 pixels (scale 1/2: kernel not stretched, support 2). Output 7 has centre 3.75 and reads
// inputs 2..5 at distances 1.25, 0.25, 0.75, 1.75, whose Keys a = -0.5 weights are -9/128,
// 111/128, 29/128, -3/128 (sum 1, all exact in 22-bit fixed point), so over a step from 64 to 192
// at input 4 it is 64 + 128 * (29 - 3) / 128 = 90; likewise 61, 55 before it and 166, 201, 195
// after: the undershoot to 55 and overshoot to 201 are the cubic's ringing. Pillow gives the same.
TEST(TaggerInputResize, StepEdgeEnlargedRingsAsPillow) {
  const std::vector<uint8_t> step = {64, 64, 64, 64, 192, 192, 192, 192};
  const std::vector<uint8_t> expected = {64, 64, 64, 64, 64, 61, 55, 90, 166, 201, 195, 192, 192, 192, 192, 192};
  EXPECT_EQ(mat_values(pillow_resize_bicubic(row_image(step), 16, 1)), expected);
  // The vertical pass is the same filter.
  EXPECT_EQ(mat_values(pillow_resize_bicubic(row_image(step).t(), 1, 16)), expected);
  // Channels are filtered independently.
  cv::Mat rgb;
  cv::merge(std::vector<cv::Mat>{row_image(step), row_image(step), row_image(step)}, rgb);
  std::vector<cv::Mat> planes;
  cv::split(pillow_resize_bicubic(rgb, 16, 1), planes);
  for (const cv::Mat& plane : planes) EXPECT_EQ(mat_values(plane), expected);
}

// 16 -> 8 (scale 2: the kernel is stretched to support 4, 8 taps of weight W(d / 2) / 2). Output 3
// (centre 7) reads inputs 3..10: 64 + 128 * (29 - 9 - 3) / 256 = 72.5, and Pillow's added half
// rounds the exact .5 up to 73; output 2 is 64 - 128 * 3 / 256 = 62.5 -> 63.
TEST(TaggerInputResize, StepEdgeShrunkAntialiasedAsPillow) {
  std::vector<uint8_t> step(16, 64);
  std::fill(step.begin() + 8, step.end(), 192);
  const std::vector<uint8_t> expected = {64, 64, 63, 73, 184, 194, 192, 192};
  EXPECT_EQ(mat_values(pillow_resize_bicubic(row_image(step), 8, 1)), expected);
  EXPECT_EQ(mat_values(pillow_resize_bicubic(row_image(step).t(), 1, 8)), expected);
}

// Integer arithmetic after double taps computed as Pillow computes them: equal to the bit.
TEST(TaggerInputResize, EqualsPillowOnNoise) {
  ls::io::SafetensorsReader golden(fixture("pillow/resize.safetensors"));
  int cases = 0;
  for (const auto& info : golden.tensors()) {
    const std::string name = info.name.substr(0, info.name.rfind('.'));
    if (info.name != name + ".in") continue;
    const cv::Mat in = to_mat(golden.load(name + ".in"));
    const cv::Mat expected = to_mat(golden.load(name + ".out"));
    const cv::Mat out = pillow_resize_bicubic(in, expected.cols, expected.rows);
    ASSERT_EQ(out.size(), expected.size()) << name;
    EXPECT_EQ(mat_values(out), mat_values(expected)) << name << ": max |diff| " << max_abs_diff(out, expected);
    ++cases;
  }
  EXPECT_EQ(cases, 9);
}

TEST(TaggerInputResize, RejectsWhatItDoesNotReproduce) {
  EXPECT_NE(ls::test::error_of([] { pillow_resize_bicubic(cv::Mat(4, 4, CV_8UC4), 2, 2); }).find("1 or 3 channels"),
            std::string::npos);
  EXPECT_NE(ls::test::error_of([] { pillow_resize_bicubic(cv::Mat(), 2, 2); }).find("empty"), std::string::npos);
  EXPECT_NE(ls::test::error_of([] { pillow_resize_bicubic(cv::Mat(4, 4, CV_8UC3), 0, 2); }).find("positive"),
            std::string::npos);
}

// ---- alpha over white

// The reference composites with Image.alpha_composite on a white canvas (AlphaComposite.c: 7
// extra bits, divisions by 255 as shifts); the tagger reuses io::decode_image_rgb's exact
// rounding of c * a / 255 + 255 - a, which this proves equal on every (value, alpha) pair.
TEST(TaggerInputAlpha, DecodeCompositesAsPillowForEveryValueAndAlpha) {
  const cv::Mat golden = ls::io::read_image_rgb(fixture("pillow/alpha_over_white.png").string());
  cv::Mat bgra(256, 256, CV_8UC4);
  for (int a = 0; a < 256; ++a)
    for (int v = 0; v < 256; ++v) bgra.at<cv::Vec4b>(a, v) = cv::Vec4b(0, 0, v, a);  // red v, alpha a
  std::vector<uint8_t> png;
  ASSERT_TRUE(cv::imencode(".png", bgra, png));
  const cv::Mat rgb = ls::io::decode_image_rgb(png, "grid.png");
  int differ = 0;
  for (int a = 0; a < 256; ++a)
    for (int v = 0; v < 256; ++v) differ += rgb.at<cv::Vec3b>(a, v)[0] != golden.at<cv::Vec3b>(a, v)[0];
  EXPECT_EQ(differ, 0) << "of 65536 (value, alpha) pairs";
}

// ---- the whole pipeline

struct GoldenImage {
  std::string file;
  // Largest |tensor - golden| allowed, in the tensor's [-1, 1] units (one 8-bit level = 2/255).
  double atol;
};

// PNG and lossless WebP decode to the same bytes everywhere, every 8-bit step is Pillow's integer
// arithmetic, and the float step is three single IEEE float32 operations in both (numpy's x / 255.0,
// torch's - 0.5 and / 0.5): bit equality, nothing to allow for.
constexpr double kLossless = 0.0;
// JPEG and lossy WebP decoders are not bit-specified: libjpeg-turbo's default ISLOW IDCT and fancy
// upsampling agree across its versions (here OpenCV's system 2.1.5 and Pillow 13's bundled 3.2.0
// agree on every pixel of shrink_tall.jpg; libwebp 1.2.4 and 1.6.0 on same_size.webp), but another
// decoder may be one level off per sample. Such a difference grows through the resize: one pass
// maps it to at most sum |tap| < 1.27 levels (1.25 for the unstretched kernel at phase 1/2,
// 2 * (9 + 1) / 16; a little more when shrinking by ~1.08) plus one for the two roundings, so <= 2
// after the first pass and <= floor(1.27 * 2 + 1) = 3 after the second. One level is 2/255 in
// the tensor's units.
constexpr double kLossyResized = 3 * 2.0 / 255;
constexpr double kLossyUnresized = 1 * 2.0 / 255;

class TaggerInputGolden : public ::testing::TestWithParam<GoldenImage> {};

TEST_P(TaggerInputGolden, EqualsPillowPipeline) {
  ls::io::SafetensorsReader golden(fixture("preprocess/golden.safetensors"));
  const at::Tensor expected = golden.load(GetParam().file);
  ls::caption::PixelSpec spec;
  spec.size = 64;
  const at::Tensor pixels =
      ls::caption::tagger_pixels_from_file(fixture("preprocess/" + GetParam().file).string(), spec);
  ASSERT_EQ(pixels.sizes(), expected.sizes());
  ASSERT_EQ(pixels.dtype(), torch::kFloat32);
  const double worst = (pixels - expected).abs().max().item<double>();
  std::cout << GetParam().file << ": max |diff| " << worst / 2 << " in [0,1] units\n";
  if (GetParam().atol == 0) EXPECT_TRUE(ls::test::bit_equal(pixels, expected));
  else EXPECT_TRUE(ls::test::all_close(pixels, expected, 0, GetParam().atol));
}

INSTANTIATE_TEST_SUITE_P(TaggerInputFiveImages, TaggerInputGolden,
                         ::testing::Values(GoldenImage{"shrink_wide.png", kLossless},
                                           GoldenImage{"shrink_tall.jpg", kLossyResized},
                                           GoldenImage{"enlarge.webp", kLossless},
                                           GoldenImage{"enlarge_rgb.png", kLossless},
                                           GoldenImage{"same_size.webp", kLossyUnresized}),
                         [](const auto& info) {
                           std::string name = info.param.file;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

TEST(TaggerInputPixels, BytesAndFileGiveTheSameTensor) {
  const fs::path path = fixture("preprocess/shrink_wide.png");
  ls::caption::PixelSpec spec;
  spec.size = 32;
  EXPECT_TRUE(ls::test::bit_equal(ls::caption::tagger_pixels(file_bytes(path), "x.png", spec),
                                  ls::caption::tagger_pixels_from_file(path.string(), spec)));
}

// A 5 x 2 red image at size 5 (no resize): side 5, top offset (5 - 2) // 2 = 1, so rows 1..2 are
// red and rows 0, 3, 4 white; transposed, columns 1..2. Red is B = G = -1, R = +1 after the flip.
TEST(TaggerInputPixels, PadsToACentredWhiteSquareInBgr) {
  ls::caption::PixelSpec spec;
  spec.size = 5;
  for (bool wide : {true, false}) {
    const cv::Mat red(wide ? 2 : 5, wide ? 5 : 2, CV_8UC3, cv::Scalar(255, 0, 0));  // R,G,B
    const at::Tensor x = ls::caption::tagger_pixels_from_rgb(red, spec);
    ASSERT_EQ(x.sizes(), (std::vector<int64_t>{1, 3, 5, 5}));
    for (int y = 0; y < 5; ++y)
      for (int xx = 0; xx < 5; ++xx) {
        const int along = wide ? y : xx;
        const bool inside = along == 1 || along == 2;
        EXPECT_EQ(x[0][0][y][xx].item<float>(), inside ? -1.0f : 1.0f) << "B at " << xx << "," << y;
        EXPECT_EQ(x[0][1][y][xx].item<float>(), inside ? -1.0f : 1.0f) << "G at " << xx << "," << y;
        EXPECT_EQ(x[0][2][y][xx].item<float>(), 1.0f) << "R at " << xx << "," << y;
      }
  }
}

// mean and std are given in RGB order, as pretrained_cfg lists them, and follow their channel
// through the flip: output channel 0 (blue) uses mean[2] / std[2].
TEST(TaggerInputPixels, MeanAndStdFollowTheirChannel) {
  ls::caption::PixelSpec spec;
  spec.size = 1;
  spec.mean = {0.25f, 0.5f, 0.75f};
  spec.std = {0.5f, 0.25f, 0.125f};
  const cv::Mat pixel(1, 1, CV_8UC3, cv::Scalar(51, 102, 204));  // R,G,B = 0.2, 0.4, 0.8 of 255
  const at::Tensor x = ls::caption::tagger_pixels_from_rgb(pixel, spec);
  EXPECT_FLOAT_EQ(x[0][0][0][0].item<float>(), (0.8f - 0.75f) / 0.125f);  // B
  EXPECT_FLOAT_EQ(x[0][1][0][0].item<float>(), (0.4f - 0.5f) / 0.25f);    // G
  EXPECT_FLOAT_EQ(x[0][2][0][0].item<float>(), (0.2f - 0.25f) / 0.5f);    // R
}

TEST(TaggerInputPixels, ErrorsNameTheImageOrTheSetting) {
  const ls::caption::PixelSpec spec;
  EXPECT_NE(ls::test::error_of([&] { ls::caption::tagger_pixels({}, "cat.png", spec); }).find("cat.png"),
            std::string::npos);
  const std::vector<uint8_t> junk = {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'};
  EXPECT_NE(ls::test::error_of([&] { ls::caption::tagger_pixels(junk, "dog.jpg", spec); }).find("dog.jpg"),
            std::string::npos);
  ls::caption::PixelSpec zero;
  zero.size = 0;
  EXPECT_NE(ls::test::error_of([&] { ls::caption::tagger_pixels_from_rgb(cv::Mat(2, 2, CV_8UC3), zero); })
                .find("input_size"),
            std::string::npos);
}

}  // namespace tagger_input_test
