// io/image: EXIF orientations 1..8 placed where the EXIF spec (CIPA DC-008 4.6.4, tag 0x0112:
// "the 0th row / 0th column" sides) says, in PNG eXIf, JPEG APP1 and WebP EXIF chunks built
// byte by byte here; header sizes equal decoded sizes; alpha over white, 16-bit and gray
// conversions against hand-computed values; broken files name themselves; resize rule; tensors.
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "io/image.h"
#include "io/image_header.h"
#include "support/image_corpus.h"
#include "support/support.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;
using ls::io::ImageSize;
using ls::test::TempDir;

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}
void put_le(Bytes& b, uint32_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void append(Bytes& b, const std::string& s) { b.insert(b.end(), s.begin(), s.end()); }

// TIFF block with IFD0 = {ImageWidth (dummy), Orientation}, in either byte order.
Bytes tiff_block(int orientation, bool little = true, uint16_t type = 3) {
  Bytes b;
  auto u16 = [&](uint32_t v) {
    if (little) put_le(b, v, 2);
    else { b.push_back(static_cast<uint8_t>(v >> 8)); b.push_back(static_cast<uint8_t>(v)); }
  };
  auto u32 = [&](uint32_t v) {
    if (little) put_le(b, v, 4);
    else put_be32(b, v);
  };
  append(b, little ? "II" : "MM");
  u16(42);
  u32(8);  // IFD0 right after the header
  u16(2);  // two entries
  u16(0x0100); u16(3); u32(1); u16(640); u16(0);  // ImageWidth, SHORT
  u16(0x0112); u16(type); u32(1);
  if (type == 3) { u16(static_cast<uint32_t>(orientation)); u16(0); }
  else u32(static_cast<uint32_t>(orientation));
  u32(0);  // no next IFD
  return b;
}

Bytes encode(const cv::Mat& rgb, const std::string& ext, std::vector<int> params = {}) {
  cv::Mat bgr;
  if (rgb.channels() == 3) cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  else bgr = rgb;
  Bytes out;
  EXPECT_TRUE(cv::imencode(ext, bgr, out, params));
  return out;
}

Bytes png_chunk(const std::string& type, const Bytes& data) {
  Bytes c;
  put_be32(c, static_cast<uint32_t>(data.size()));
  append(c, type);
  c.insert(c.end(), data.begin(), data.end());
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(type.data()), 4);
  if (!data.empty()) crc = crc32(crc, data.data(), static_cast<uInt>(data.size()));  // NULL resets
  put_be32(c, static_cast<uint32_t>(crc));
  return c;
}

// eXIf chunk right after IHDR (signature 8 + IHDR 25 bytes).
Bytes png_with_exif(const Bytes& png, const Bytes& tiff) {
  Bytes out(png.begin(), png.begin() + 33);
  const Bytes chunk = png_chunk("eXIf", tiff);
  out.insert(out.end(), chunk.begin(), chunk.end());
  out.insert(out.end(), png.begin() + 33, png.end());
  return out;
}

// A PNG of any colour type / bit depth from raw rows (filter 0), for what OpenCV cannot write.
Bytes make_png(int width, int height, int bit_depth, int color_type, const Bytes& pixels) {
  Bytes out = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  Bytes ihdr;
  put_be32(ihdr, static_cast<uint32_t>(width));
  put_be32(ihdr, static_cast<uint32_t>(height));
  ihdr.insert(ihdr.end(), {static_cast<uint8_t>(bit_depth), static_cast<uint8_t>(color_type), 0, 0, 0});
  Bytes raw;
  const size_t row = pixels.size() / static_cast<size_t>(height);
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), pixels.begin() + static_cast<long>(y * row), pixels.begin() + static_cast<long>((y + 1) * row));
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  Bytes z(size);
  EXPECT_EQ(compress(z.data(), &size, raw.data(), static_cast<uLong>(raw.size())), Z_OK);
  z.resize(size);
  for (const Bytes& c : {png_chunk("IHDR", ihdr), png_chunk("IDAT", z), png_chunk("IEND", {})})
    out.insert(out.end(), c.begin(), c.end());
  return out;
}

// Simple-format WebP (one VP8/VP8L chunk) -> extended format: VP8X (EXIF flag) + image + EXIF.
Bytes webp_with_exif(const Bytes& webp, int width, int height, const Bytes& tiff) {
  Bytes body;
  append(body, "WEBP");
  append(body, "VP8X");
  put_le(body, 10, 4);
  body.insert(body.end(), {0x08, 0, 0, 0});
  put_le(body, static_cast<uint32_t>(width - 1), 3);
  put_le(body, static_cast<uint32_t>(height - 1), 3);
  body.insert(body.end(), webp.begin() + 12, webp.end());  // the VP8/VP8L chunk as it was
  append(body, "EXIF");
  put_le(body, static_cast<uint32_t>(tiff.size()), 4);
  body.insert(body.end(), tiff.begin(), tiff.end());
  if (tiff.size() % 2) body.push_back(0);
  Bytes out;
  append(out, "RIFF");
  put_le(out, static_cast<uint32_t>(body.size()), 4);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// Where stored pixel (r, c) of an HxW image is displayed, from the spec's table of the sides the
// 0th row and the 0th column are on.
cv::Mat expected_display(const cv::Mat& stored, int orientation) {
  struct Sides { char row0, col0; };  // t/b/l/r
  static const Sides kSides[9] = {{}, {'t', 'l'}, {'t', 'r'}, {'b', 'r'}, {'b', 'l'},
                                  {'l', 't'}, {'r', 't'}, {'r', 'b'}, {'l', 'b'}};
  const Sides s = kSides[orientation];
  const int H = stored.rows, W = stored.cols;
  const bool swapped = s.row0 == 'l' || s.row0 == 'r';
  cv::Mat out(swapped ? W : H, swapped ? H : W, stored.type());
  for (int r = 0; r < H; ++r)
    for (int c = 0; c < W; ++c) {
      int x, y;
      if (!swapped) {
        y = s.row0 == 't' ? r : H - 1 - r;
        x = s.col0 == 'l' ? c : W - 1 - c;
      } else {
        x = s.row0 == 'l' ? r : H - 1 - r;
        y = s.col0 == 't' ? c : W - 1 - c;
      }
      out.at<cv::Vec3b>(y, x) = stored.at<cv::Vec3b>(r, c);
    }
  return out;
}

// Every pixel distinct enough to catch any misplacement; odd sizes catch width/height swaps.
cv::Mat pattern(int width, int height) {
  cv::Mat m(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      m.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uint8_t>(x * 9), static_cast<uint8_t>(y * 11),
                                        static_cast<uint8_t>((x * 31 + y * 17) % 256));
  return m;
}

int max_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.type() != b.type()) return 1 << 30;
  return static_cast<int>(cv::norm(a, b, cv::NORM_INF));
}

void write_bytes(const fs::path& path, const Bytes& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
}

TEST(ImageExif, CornersLandWhereTheSpecSays) {
  // Stored: top-left red, top-right green, bottom-left blue, bottom-right white (5x3 blocks).
  cv::Mat stored(30, 50, CV_8UC3, cv::Scalar(0, 0, 0));
  const cv::Vec3b R(255, 0, 0), G(0, 255, 0), B(0, 0, 255), W(255, 255, 255);
  stored(cv::Rect(0, 0, 5, 5)).setTo(cv::Scalar(R));
  stored(cv::Rect(45, 0, 5, 5)).setTo(cv::Scalar(G));
  stored(cv::Rect(0, 25, 5, 5)).setTo(cv::Scalar(B));
  stored(cv::Rect(45, 25, 5, 5)).setTo(cv::Scalar(W));
  // Displayed {top-left, top-right, bottom-left, bottom-right}, worked out by hand from the spec.
  const cv::Vec3b table[9][4] = {{}, {R, G, B, W}, {G, R, W, B}, {W, B, G, R}, {B, W, R, G},
                                 {R, B, G, W}, {B, R, W, G}, {W, G, B, R}, {G, W, R, B}};
  const Bytes png = encode(stored, ".png");
  for (int o = 1; o <= 8; ++o) {
    const cv::Mat shown = ls::io::decode_image_rgb(png_with_exif(png, tiff_block(o)), "corners.png");
    ASSERT_EQ(shown.cols, o >= 5 ? 30 : 50) << "orientation " << o;
    const int w = shown.cols - 1, h = shown.rows - 1;
    EXPECT_EQ(shown.at<cv::Vec3b>(0, 0), table[o][0]) << "orientation " << o;
    EXPECT_EQ(shown.at<cv::Vec3b>(0, w), table[o][1]) << "orientation " << o;
    EXPECT_EQ(shown.at<cv::Vec3b>(h, 0), table[o][2]) << "orientation " << o;
    EXPECT_EQ(shown.at<cv::Vec3b>(h, w), table[o][3]) << "orientation " << o;
  }
}

struct FormatCase {
  const char* name;
  std::string ext;
  std::vector<int> params;
  bool lossless;
};

// For each container: the decoded image with EXIF o equals the spec mapping of the same file
// decoded without EXIF, exactly (same decoder, same pixels); header size == decoded size.
TEST(ImageExif, AllOrientationsInPngJpegWebp) {
  const int W = 37, H = 23;
  const cv::Mat stored = pattern(W, H);
  const FormatCase cases[] = {{"png", ".png", {}, true},
                              {"jpg", ".jpg", {cv::IMWRITE_JPEG_QUALITY, 90}, false},
                              {"webp-lossy", ".webp", {cv::IMWRITE_WEBP_QUALITY, 80}, false},
                              {"webp-lossless", ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}, true}};
  TempDir dir;
  for (const FormatCase& fc : cases) {
    const Bytes plain = encode(stored, fc.ext, fc.params);
    const cv::Mat base = ls::io::decode_image_rgb(plain, fc.name);
    if (fc.lossless) {
      EXPECT_EQ(max_abs_diff(base, stored), 0) << fc.name;
    }
    for (int o = 1; o <= 8; ++o) {
      const bool little = o % 2 == 0;  // both TIFF byte orders
      const Bytes tiff = tiff_block(o, little);
      const Bytes bytes = fc.ext == ".png"   ? png_with_exif(plain, tiff)
                          : fc.ext == ".jpg" ? ls::test::jpeg_with_exif_segment(plain, tiff)
                                             : webp_with_exif(plain, W, H, tiff);
      EXPECT_EQ(ls::io::exif_orientation(bytes.data(), bytes.size()), o) << fc.name;
      const std::string label = std::string(fc.name) + " orientation " + std::to_string(o);
      const cv::Mat shown = ls::io::decode_image_rgb(bytes, label);
      EXPECT_EQ(max_abs_diff(shown, expected_display(base, o)), 0) << label;
      const fs::path path = dir / ("o" + std::to_string(o) + fc.ext);
      write_bytes(path, bytes);
      const ImageSize size = ls::io::read_image_size(path.string());
      EXPECT_EQ(size.width, shown.cols) << label;
      EXPECT_EQ(size.height, shown.rows) << label;
      EXPECT_EQ(size.width, o >= 5 ? H : W) << label;
      const ImageSize from_bytes = ls::io::image_size_from_bytes(bytes, label);
      EXPECT_EQ(from_bytes.width, shown.cols) << label;
      EXPECT_EQ(from_bytes.height, shown.rows) << label;
    }
  }
}

TEST(ImageExif, ParsesVariantsAndIgnoresJunk) {
  const Bytes png = encode(pattern(8, 6), ".png");
  const Bytes jpg = encode(pattern(8, 6), ".jpg");
  EXPECT_EQ(ls::io::exif_orientation(png.data(), png.size()), 1);
  EXPECT_EQ(ls::io::exif_orientation(jpg.data(), jpg.size()), 1);
  // LONG instead of SHORT (some writers), big-endian, "Exif\0\0" prefix inside a PNG eXIf.
  const Bytes as_long = png_with_exif(png, tiff_block(6, false, 4));
  EXPECT_EQ(ls::io::exif_orientation(as_long.data(), as_long.size()), 6);
  Bytes prefixed(6, 0);
  std::memcpy(prefixed.data(), "Exif\0\0", 6);
  const Bytes t7 = tiff_block(7);
  prefixed.insert(prefixed.end(), t7.begin(), t7.end());
  const Bytes with_prefix = png_with_exif(png, prefixed);
  EXPECT_EQ(ls::io::exif_orientation(with_prefix.data(), with_prefix.size()), 7);
  // Out-of-range value, bad magic, IFD offset past the end, a non-Exif APP1: all read as 1.
  const Bytes nine = png_with_exif(png, tiff_block(9));
  EXPECT_EQ(ls::io::exif_orientation(nine.data(), nine.size()), 1);
  Bytes bad_magic = tiff_block(6);
  bad_magic[2] = 43;
  EXPECT_EQ(ls::io::tiff_orientation(bad_magic.data(), bad_magic.size()), 1);
  Bytes far_ifd = tiff_block(6);
  far_ifd[4] = 200;
  EXPECT_EQ(ls::io::tiff_orientation(far_ifd.data(), far_ifd.size()), 1);
  EXPECT_EQ(ls::io::tiff_orientation(far_ifd.data(), 9), 1);
  Bytes xmp = {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x0A};
  append(xmp, "http:/x");
  xmp.pop_back();
  EXPECT_EQ(ls::io::exif_orientation(xmp.data(), xmp.size()), 1);
  // eXIf after IDAT does not count (PNG orders it before IDAT; the size-only walk stops there).
  Bytes late(png.begin(), png.end() - 12);
  const Bytes chunk = png_chunk("eXIf", tiff_block(6));
  late.insert(late.end(), chunk.begin(), chunk.end());
  late.insert(late.end(), png.end() - 12, png.end());
  EXPECT_EQ(ls::io::exif_orientation(late.data(), late.size()), 1);
  EXPECT_EQ(ls::io::decode_image_rgb(late, "late.png").cols, 8);
}

TEST(ImageSizeHeader, EqualsDecodedSizeForEveryFormat) {
  TempDir dir;
  const cv::Mat img = pattern(61, 45);
  for (const std::string ext : {".png", ".jpg", ".webp", ".bmp"}) {
    for (const std::vector<int>& params :
         {std::vector<int>{}, std::vector<int>{cv::IMWRITE_WEBP_QUALITY, 75}}) {
      const Bytes bytes = encode(img, ext, params);
      const fs::path path = dir / ("size" + ext);
      write_bytes(path, bytes);
      const ImageSize s = ls::io::read_image_size(path.string());
      const cv::Mat decoded = ls::io::read_image_rgb(path.string());
      EXPECT_EQ(s.width, 61) << ext;
      EXPECT_EQ(s.height, 45) << ext;
      EXPECT_EQ(decoded.cols, 61) << ext;
      EXPECT_EQ(decoded.rows, 45) << ext;
      if (ext == ".bmp" || ext == ".png") {
        EXPECT_EQ(max_abs_diff(decoded, img), 0) << ext;
      }
    }
  }
  // The WebP header tells lossy (VP8) from lossless (VP8L) apart: both were parsed above.
  const Bytes lossy = encode(img, ".webp", {cv::IMWRITE_WEBP_QUALITY, 75});
  const Bytes lossless = encode(img, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101});
  EXPECT_EQ(std::string(lossy.begin() + 12, lossy.begin() + 16), "VP8 ");
  EXPECT_EQ(std::string(lossless.begin() + 12, lossless.begin() + 16), "VP8L");
  const ImageSize s = ls::io::image_size_from_bytes(lossless, "l.webp");
  EXPECT_EQ(s.width * 1000 + s.height, 61045);
}

TEST(ImageDecode, AlphaIsCompositedOnWhite) {
  cv::Mat bgra(1, 4, CV_8UC4);
  bgra.at<cv::Vec4b>(0, 0) = {30, 20, 10, 0};     // fully transparent: white whatever the colour
  bgra.at<cv::Vec4b>(0, 1) = {0, 0, 255, 128};    // red at alpha 128
  bgra.at<cv::Vec4b>(0, 2) = {200, 100, 50, 255}; // opaque: unchanged
  bgra.at<cv::Vec4b>(0, 3) = {0, 0, 0, 51};       // black at 20%
  const cv::Mat rgb = ls::io::decode_image_rgb(encode(bgra, ".png"), "alpha.png");
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
  // 255*128/255 + 255*127/255 = 255 and 0 + 255*127/255 = 127.
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 1), cv::Vec3b(255, 127, 127));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 2), cv::Vec3b(50, 100, 200));
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 3), cv::Vec3b(204, 204, 204));  // 255 * (1 - 0.2)
  // Lossless WebP with alpha goes through the same path.
  const cv::Mat webp = ls::io::decode_image_rgb(encode(bgra, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}), "a.webp");
  EXPECT_EQ(max_abs_diff(webp, rgb), 0);
}

TEST(ImageDecode, SixteenBitAndGray) {
  // 16-bit RGB: v -> round(v*255/65535): 65535 -> 255, 32896 -> 128, 257k -> k, 128 -> 0, 129 -> 1.
  const uint16_t values[] = {65535, 32896, 257 * 77, 128, 129, 0};
  cv::Mat rgb16(1, 6, CV_16UC3);
  for (int i = 0; i < 6; ++i) rgb16.at<cv::Vec<uint16_t, 3>>(0, i) = {values[i], values[i], values[i]};
  const cv::Mat out = ls::io::decode_image_rgb(encode(rgb16, ".png"), "deep.png");
  const int expected[] = {255, 128, 77, 0, 1, 0};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out.at<cv::Vec3b>(0, i), cv::Vec3b::all(static_cast<uint8_t>(expected[i]))) << i;

  // 8-bit gray -> three equal channels.
  cv::Mat gray(2, 3, CV_8UC1);
  for (int i = 0; i < 6; ++i) gray.data[i] = static_cast<uint8_t>(i * 50);
  const cv::Mat g = ls::io::decode_image_rgb(encode(gray, ".png"), "gray.png");
  for (int i = 0; i < 6; ++i) EXPECT_EQ(g.at<cv::Vec3b>(i / 3, i % 3), cv::Vec3b::all(static_cast<uint8_t>(i * 50)));

  // Gray + alpha (colour type 4), 8 and 16 bit, written by hand.
  const Bytes ga8 = make_png(2, 1, 8, 4, {100, 255, 0, 128});
  const cv::Mat a8 = ls::io::decode_image_rgb(ga8, "ga8.png");
  EXPECT_EQ(a8.at<cv::Vec3b>(0, 0), cv::Vec3b::all(100));
  EXPECT_EQ(a8.at<cv::Vec3b>(0, 1), cv::Vec3b::all(127));
  // 16-bit gray 0 at alpha 32768/65535: 255 * (1 - 0.500008) = 127.498 -> 127; gray 32896 opaque -> 128.
  const Bytes ga16 = make_png(2, 1, 16, 4, {0x00, 0x00, 0x80, 0x00, 0x80, 0x80, 0xFF, 0xFF});
  const cv::Mat a16 = ls::io::decode_image_rgb(ga16, "ga16.png");
  EXPECT_EQ(a16.at<cv::Vec3b>(0, 0), cv::Vec3b::all(127));
  EXPECT_EQ(a16.at<cv::Vec3b>(0, 1), cv::Vec3b::all(128));
  // 16-bit RGBA: white at alpha 0 and red at alpha 65535.
  const Bytes rgba16 = make_png(2, 1, 16, 6, {0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF});
  const cv::Mat c16 = ls::io::decode_image_rgb(rgba16, "rgba16.png");
  EXPECT_EQ(c16.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(c16.at<cv::Vec3b>(0, 1), cv::Vec3b(255, 0, 0));
}

void expect_error_naming(const std::function<void()>& f, const std::string& name, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "no error for " << name;
  } catch (const ls::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(name), std::string::npos) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(ImageDecode, BrokenFilesNameThemselves) {
  TempDir dir;
  const cv::Mat img = pattern(64, 48);
  const fs::path empty = dir / "empty.png";
  write_bytes(empty, {});
  expect_error_naming([&] { ls::io::read_image_rgb(empty.string()); }, empty.string(), "empty file");
  expect_error_naming([&] { ls::io::read_image_size(empty.string()); }, empty.string(), "empty file");
  ls::core::Rng rng(7);
  Bytes noise(1000);
  for (auto& b : noise) b = static_cast<uint8_t>(rng.below(256));
  const fs::path random = dir / "noise.jpg";
  write_bytes(random, noise);
  expect_error_naming([&] { ls::io::read_image_rgb(random.string()); }, random.string(), "not a PNG");
  expect_error_naming([&] { ls::io::read_image_size(random.string()); }, random.string(), "not a PNG");
  // Cut in the middle of the data: each container's end marker is missing.
  for (const std::string ext : {".png", ".jpg", ".webp", ".bmp"}) {
    Bytes bytes = encode(img, ext, ext == ".webp" ? std::vector<int>{cv::IMWRITE_WEBP_QUALITY, 90} : std::vector<int>{});
    bytes.resize(bytes.size() / 2);
    expect_error_naming([&] { ls::io::decode_image_rgb(bytes, "half" + ext); }, "half" + ext, "truncated");
    // The header survives, so the size-only path still answers.
    EXPECT_EQ(ls::io::image_size_from_bytes(bytes, "half" + ext).width, 64) << ext;
  }
  // Cut inside the header: the size-only path fails too.
  Bytes head = encode(img, ".png");
  head.resize(20);
  const fs::path cut = dir / "cut.png";
  write_bytes(cut, head);
  expect_error_naming([&] { ls::io::read_image_size(cut.string()); }, cut.string(), "truncated");
  expect_error_naming([&] { ls::io::read_image_rgb((dir / "missing.png").string()); }, "missing.png", "cannot open");
  // A PNG whose IDAT data is garbage (structure intact): the decoder's refusal becomes an Error.
  Bytes garbage = make_png(4, 4, 8, 2, Bytes(48, 7));
  garbage[41 + 4] ^= 0xFF;  // inside the zlib stream of IDAT
  expect_error_naming([&] { ls::io::decode_image_rgb(garbage, "garbage.png"); }, "garbage.png", "");
}

// The dataset scan asks the header alone before it reads a file: what the header can refuse is
// refused there, and a cut body is left for check_image on the whole bytes.
TEST(ImageDecode, FileHeaderCheckRefusesWhatTheHeaderShows) {
  TempDir dir;
  const fs::path empty = dir / "empty.png";
  write_bytes(empty, {});
  expect_error_naming([&] { ls::io::check_image_file_header(empty.string()); }, empty.string(), "empty file");
  const fs::path text = dir / "notes.png";
  write_bytes(text, Bytes{'h', 'e', 'l', 'l', 'o'});
  expect_error_naming([&] { ls::io::check_image_file_header(text.string()); }, text.string(), "not a PNG");
  fs::create_directory(dir / "folder.jpg");
  expect_error_naming([&] { ls::io::check_image_file_header((dir / "folder.jpg").string()); }, "folder.jpg",
                      "a folder");
  // A 20000x20000 IHDR and nothing after it: refused by its declared size.
  Bytes bomb = make_png(20000, 20000, 8, 2, Bytes(3, 0));
  bomb.resize(33);  // signature + IHDR chunk
  const fs::path big = dir / "bomb.png";
  write_bytes(big, bomb);
  expect_error_naming([&] { ls::io::check_image_file_header(big.string()); }, big.string(), "pixels");
  // Half of a real PNG: the header is whole, so this check passes and check_image refuses the rest.
  Bytes half = encode(pattern(64, 48), ".png");
  half.resize(half.size() / 2);
  const fs::path cut = dir / "half.png";
  write_bytes(cut, half);
  EXPECT_NO_THROW(ls::io::check_image_file_header(cut.string()));
  expect_error_naming([&] { ls::io::check_image(half, cut.string()); }, cut.string(), "truncated");
}

TEST(ImageWrite, RoundTripsByExtension) {
  TempDir dir;
  const cv::Mat img = pattern(40, 30);
  for (const std::string name : {"a.png", "b.PNG", "c.bmp", "d.webp"}) {
    ls::io::write_image((dir / name).string(), img);
    EXPECT_EQ(max_abs_diff(ls::io::read_image_rgb((dir / name).string()), img), 0) << name;
  }
  // JPEG at quality 95: close to the original (smooth image), and it is a JPEG.
  cv::Mat smooth(64, 64, CV_8UC3);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) smooth.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uint8_t>(x * 4), static_cast<uint8_t>(y * 4), 128);
  for (const std::string name : {"e.jpg", "f.jpeg"}) {
    ls::io::write_image((dir / name).string(), smooth);
    const Bytes bytes = ls::io::encode_image(".jpg", smooth);
    EXPECT_EQ(ls::io::sniff_image_format(bytes.data(), bytes.size()), ls::io::ImageFormat::kJpeg);
    const cv::Mat back = ls::io::read_image_rgb((dir / name).string());
    EXPECT_LE(cv::norm(back, smooth, cv::NORM_L1) / (64.0 * 64 * 3), 1.5) << name;
  }
  // No temp file left behind; unknown extensions refused.
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) files += entry.is_regular_file();
  EXPECT_EQ(files, 6u);
  expect_error_naming([&] { ls::io::write_image((dir / "x.gif").string(), img); }, ".gif", "use .png");
}

TEST(ImageResize, AreaForShrinkLanczosOtherwise) {
  const cv::Mat img = pattern(50, 40);
  auto reference = [&](int w, int h, int interpolation) {
    cv::Mat out;
    cv::resize(img, out, cv::Size(w, h), 0, 0, interpolation);
    return out;
  };
  EXPECT_EQ(max_abs_diff(ls::io::resize_image(img, 35, 28), reference(35, 28, cv::INTER_AREA)), 0);
  EXPECT_EQ(max_abs_diff(ls::io::resize_image(img, 80, 64), reference(80, 64, cv::INTER_LANCZOS4)), 0);
  // Shrinks one side only: not "smaller in both directions", so LANCZOS4 (as kohya).
  EXPECT_EQ(max_abs_diff(ls::io::resize_image(img, 30, 60), reference(30, 60, cv::INTER_LANCZOS4)), 0);
  EXPECT_EQ(max_abs_diff(ls::io::resize_image(img, 50, 39), reference(50, 39, cv::INTER_LANCZOS4)), 0);
  EXPECT_NE(max_abs_diff(reference(35, 28, cv::INTER_AREA), reference(35, 28, cv::INTER_LANCZOS4)), 0);
  EXPECT_EQ(max_abs_diff(ls::io::resize_image(img, 50, 40), img), 0);
  EXPECT_THROW(ls::io::resize_image(img, 0, 10), ls::Error);
}

TEST(ImageTensor, ValuesLayoutAndRoundTrip) {
  cv::Mat all(1, 256, CV_8UC3);
  for (int i = 0; i < 256; ++i) all.at<cv::Vec3b>(0, i) = cv::Vec3b(static_cast<uint8_t>(i), 0, 255);
  const torch::Tensor t = ls::io::image_to_tensor(all);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3, 1, 256}));
  EXPECT_EQ(t.dtype(), torch::kFloat32);
  EXPECT_EQ(t[0][0][0].item<float>(), -1.0f);
  EXPECT_EQ(t[0][0][255].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(t[0][0][51].item<float>(), 51 / 127.5f - 1);
  EXPECT_EQ(t[1].max().item<float>(), -1.0f);  // channel 1 is green, all zero
  EXPECT_EQ(t[2].min().item<float>(), 1.0f);   // channel 2 is blue, all 255
  EXPECT_EQ(max_abs_diff(ls::io::tensor_to_image(t), all), 0);
  EXPECT_EQ(max_abs_diff(ls::io::tensor_to_image(t.to(torch::kFloat64)), all), 0);
  // Rounds to nearest and clamps: -0.004 -> 126.99 -> 127; 0 -> 127.5 -> 128 (half to even).
  const torch::Tensor v = torch::tensor({-3.0, -1.0, -0.004, 1.0, 2.5, 0.0, 0.0, 0.0, 0.0}).reshape({3, 1, 3});
  const cv::Mat px = ls::io::tensor_to_image(v);
  EXPECT_EQ(px.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 255, 128));
  EXPECT_EQ(px.at<cv::Vec3b>(0, 1), cv::Vec3b(0, 255, 128));
  EXPECT_EQ(px.at<cv::Vec3b>(0, 2), cv::Vec3b(127, 128, 128));
  // A non-continuous view (ROI) converts like its copy.
  const cv::Mat big = pattern(20, 10);
  const cv::Mat roi = big(cv::Rect(3, 2, 7, 5));
  EXPECT_TRUE(torch::equal(ls::io::image_to_tensor(roi), ls::io::image_to_tensor(roi.clone())));
  EXPECT_THROW(ls::io::tensor_to_image(torch::zeros({4, 2, 2})), ls::Error);
  EXPECT_THROW(ls::io::tensor_to_image(torch::full({3, 1, 1}, NAN)), ls::Error);
}

// Numbers for the report: decode of a 512x512 PNG and header-only size reads.
TEST(ImageTiming, DecodeAndHeaderRead) {
  cv::Mat img(512, 512, CV_8UC3);
  ls::core::Rng rng(1);
  for (int y = 0; y < 512; ++y)
    for (int x = 0; x < 512; ++x)
      img.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uint8_t>(x / 2), static_cast<uint8_t>(y / 2),
                                          static_cast<uint8_t>(rng.below(32) + 100));
  TempDir dir;
  const fs::path png = dir / "t.png", jpg = dir / "t.jpg";
  ls::io::write_image(png.string(), img);
  ls::io::write_image(jpg.string(), img);
  using clock = std::chrono::steady_clock;
  auto per_call_ms = [](auto&& f, int n) {
    const auto t0 = clock::now();
    for (int i = 0; i < n; ++i) f();
    return std::chrono::duration<double, std::milli>(clock::now() - t0).count() / n;
  };
  const double png_ms = per_call_ms([&] { ls::io::read_image_rgb(png.string()); }, 20);
  const double jpg_ms = per_call_ms([&] { ls::io::read_image_rgb(jpg.string()); }, 20);
  const double size_us = 1000 * per_call_ms([&] { ls::io::read_image_size(png.string()); }, 500);
  const double jsize_us = 1000 * per_call_ms([&] { ls::io::read_image_size(jpg.string()); }, 500);
  std::printf("[timing] 512x512 decode: PNG %.2f ms (%zu bytes), JPEG %.2f ms; read_image_size: PNG %.1f us, JPEG %.1f us\n",
              png_ms, static_cast<size_t>(fs::file_size(png)), jpg_ms, size_us, jsize_us);
  EXPECT_EQ(ls::io::read_image_size(png.string()).width, 512);
}

}  // namespace
