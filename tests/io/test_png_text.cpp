// io/png_text: a PNG built byte by byte here (CRCs from zlib's crc32, zTXt/iTXt bodies from zlib's
// compress, per PNG spec §11.3.3) reads back; inserted chunks have the exact bytes PIL writes
// (tEXt for Latin-1, uncompressed iTXt otherwise), sit before the first IDAT and leave OpenCV's
// decode pixel-identical; CRC damage and every truncation are refused naming the file.
#include <zlib.h>

#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "io/image.h"
#include "io/png_text.h"
#include "support/support.h"

namespace png_text_test {

using Bytes = std::vector<uint8_t>;
using ls::io::png_with_text;
using ls::io::read_png_text;

void be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

// length, type, data, CRC-32 over type + data (computed here with zlib, independently of the code).
Bytes chunk(const std::string& type, const std::string& data) {
  Bytes b;
  be32(b, static_cast<uint32_t>(data.size()));
  std::string td = type + data;
  b.insert(b.end(), td.begin(), td.end());
  be32(b, static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(td.data()),
                                      static_cast<uInt>(td.size()))));
  return b;
}

std::string zlib_compress(const std::string& s) {
  uLongf n = compressBound(s.size());
  std::string out(n, '\0');
  EXPECT_EQ(compress(reinterpret_cast<Bytef*>(out.data()), &n, reinterpret_cast<const Bytef*>(s.data()), s.size()),
            Z_OK);
  out.resize(n);
  return out;
}

const std::string kSig = "\x89PNG\r\n\x1a\n";

// 1x1 8-bit grayscale PNG, value 200, with `middle` chunks between IHDR and IDAT.
Bytes tiny_png(const std::vector<Bytes>& middle) {
  Bytes png(kSig.begin(), kSig.end());
  auto add = [&](const Bytes& c) { png.insert(png.end(), c.begin(), c.end()); };
  add(chunk("IHDR", std::string("\0\0\0\1\0\0\0\1\x08\0\0\0\0", 13)));  // 1x1, depth 8, gray
  for (const Bytes& c : middle) add(c);
  add(chunk("IDAT", zlib_compress(std::string("\0\xc8", 2))));  // filter 0, pixel 200
  add(chunk("IEND", ""));
  return png;
}

cv::Mat test_image(int w, int h) {
  ls::core::Rng rng(7, {ls::core::purpose_id("png_text_test")});
  cv::Mat rgb(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) rgb.at<cv::Vec3b>(y, x)[c] = static_cast<uint8_t>(rng.below(256));
  return rgb;
}

size_t find(const Bytes& hay, const std::string& needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end());
  return it == hay.end() ? std::string::npos : static_cast<size_t>(it - hay.begin());
}

TEST(PngText, IendCrcIsTheWellKnownConstant) {
  // Guards the test's own CRC helper: every PNG ends in 00 00 00 00 'IEND' AE 42 60 82.
  EXPECT_EQ(chunk("IEND", ""), (Bytes{0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82}));
}

TEST(PngText, ReadsHandBuiltTextZtxtAndItxt) {
  const std::string cjk = "\xe7\x8c\xab \xf0\x9f\x90\x88";  // 猫 🐈
  Bytes png = tiny_png({
      chunk("tEXt", std::string("Comment\0caf\xe9", 12)),  // Latin-1 é
      chunk("zTXt", std::string("Zipped\0\0", 8) + zlib_compress("compressed, \xb5")),  // µ
      chunk("iTXt", std::string("plain\0\0\0en\0Plain\0", 17) + cjk),
      chunk("iTXt", std::string("zipped itxt\0\1\0\0\0", 16) + zlib_compress(cjk)),
  });
  auto texts = read_png_text(png, "hand.png");
  std::map<std::string, std::string> expected = {{"Comment", "caf\xc3\xa9"},
                                                 {"Zipped", "compressed, \xc2\xb5"},
                                                 {"plain", cjk},
                                                 {"zipped itxt", cjk}};
  EXPECT_EQ(texts, expected);
  cv::Mat gray = cv::imdecode(png, cv::IMREAD_UNCHANGED);
  ASSERT_EQ(gray.total(), 1u);
  EXPECT_EQ(gray.at<uint8_t>(0, 0), 200);
}

TEST(PngText, InsertedChunksHaveThePilBytes) {
  Bytes base = tiny_png({});
  Bytes out = png_with_text(base, {{"parameters", "a cat\nSteps: 20"}, {"emoji", "\xf0\x9f\x98\x80"},
                                   {"latin", "na\xc3\xafve"}});
  Bytes expected(base.begin(), base.begin() + 8 + 25);  // signature + IHDR
  for (const Bytes& c : {chunk("tEXt", std::string("parameters\0a cat\nSteps: 20", 26)),
                         chunk("iTXt", std::string("emoji\0\0\0\0\0", 10) + "\xf0\x9f\x98\x80"),
                         chunk("tEXt", std::string("latin\0na\xefve", 11))})
    expected.insert(expected.end(), c.begin(), c.end());
  expected.insert(expected.end(), base.begin() + 8 + 25, base.end());  // IDAT, IEND
  EXPECT_EQ(out, expected);
}

TEST(PngText, RoundTripsAsciiAndUtf8ThroughOpenCvPngs) {
  cv::Mat rgb = test_image(37, 23);
  Bytes png = ls::io::encode_image(".png", rgb);
  const std::string ascii = "masterpiece, 1girl, (red hair:1.2), <lora:style:0.8>\nNegative prompt: blurry\n"
                            "Steps: 20, Sampler: DPM++ 2M, CFG scale: 7";
  const std::string utf8 = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x97\xe3\x83\xad\xe3\x83\xb3"
                           "\xe3\x83\x97\xe3\x83\x88 \xf0\x9f\x8c\xb8\xf0\x9f\x97\xbb, caf\xc3\xa9";  // 日本語のプロンプト 🌸🗻
  Bytes tagged = png_with_text(png, {{"parameters", ascii}, {"prompt utf8", utf8}});
  EXPECT_EQ(read_png_text(tagged, "t.png"),
            (std::map<std::string, std::string>{{"parameters", ascii}, {"prompt utf8", utf8}}));
  // Before the first IDAT, and OpenCV still decodes the same pixels.
  EXPECT_LT(find(tagged, "tEXtparameters"), find(tagged, "IDAT"));
  EXPECT_LT(find(tagged, "iTXtprompt utf8"), find(tagged, "IDAT"));
  cv::Mat before = cv::imdecode(png, cv::IMREAD_UNCHANGED), after = cv::imdecode(tagged, cv::IMREAD_UNCHANGED);
  ASSERT_FALSE(after.empty());
  ASSERT_EQ(after.size(), before.size());
  EXPECT_EQ(cv::norm(before, after, cv::NORM_INF), 0.0);
  cv::Mat decoded = ls::io::decode_image_rgb(tagged, "t.png");
  EXPECT_EQ(cv::norm(decoded, rgb, cv::NORM_INF), 0.0);
}

TEST(PngText, RetaggingReplacesTheSameKey) {
  Bytes once = png_with_text(tiny_png({}), {{"parameters", "first"}, {"other", "kept"}});
  Bytes twice = png_with_text(once, {{"parameters", "second \xe2\x9c\x93"}});
  EXPECT_EQ(read_png_text(twice, "t.png"),
            (std::map<std::string, std::string>{{"other", "kept"}, {"parameters", "second \xe2\x9c\x93"}}));
  EXPECT_EQ(find(twice, "first"), std::string::npos);
  EXPECT_EQ(twice.size(), once.size() - chunk("tEXt", std::string("parameters\0first", 16)).size() +
                              chunk("iTXt", std::string("parameters\0\0\0\0\0second \xe2\x9c\x93", 25)).size());
}

TEST(PngText, WritesAndReadsFiles) {
  ls::test::TempDir dir;
  cv::Mat rgb = test_image(16, 9);
  const std::string path = (dir / "out.png").string();
  ls::io::write_png_with_text(path, rgb, {{"parameters", "x, y\nSteps: 1"}});
  EXPECT_EQ(ls::io::read_png_text_file(path), (std::map<std::string, std::string>{{"parameters", "x, y\nSteps: 1"}}));
  EXPECT_EQ(cv::norm(ls::io::read_image_rgb(path), rgb, cv::NORM_INF), 0.0);
}

TEST(PngText, CrcDamageIsFound) {
  Bytes png = png_with_text(tiny_png({}), {{"parameters", "Steps: 20"}});
  const size_t at = find(png, "Steps");
  png[at] ^= 0x01;  // "Rteps": still text, wrong CRC
  std::string err = ls::test::error_of([&] { read_png_text(png, "damaged.png"); });
  EXPECT_NE(err.find("damaged.png"), std::string::npos) << err;
  EXPECT_NE(err.find("CRC mismatch in chunk 'tEXt'"), std::string::npos) << err;
  // Damage to the image data is found as well, though the text itself is intact.
  Bytes png2 = png_with_text(tiny_png({}), {{"parameters", "Steps: 20"}});
  png2[find(png2, "IDAT") + 5] ^= 0x40;
  err = ls::test::error_of([&] { read_png_text(png2, "idat.png"); });
  EXPECT_NE(err.find("CRC mismatch in chunk 'IDAT'"), std::string::npos) << err;
}

TEST(PngText, EveryTruncationIsRefused) {
  Bytes png = png_with_text(ls::io::encode_image(".png", test_image(8, 8)), {{"parameters", "Steps: 20"}});
  for (size_t n = 0; n < png.size(); ++n) {
    Bytes cut(png.begin(), png.begin() + n);
    std::string err = ls::test::error_of([&] { read_png_text(cut, "cut.png"); });
    ASSERT_NE(err.find("cut.png: "), std::string::npos) << "length " << n << ": '" << err << "'";
  }
  std::string err = ls::test::error_of([&] { read_png_text(Bytes(png.begin(), png.end() - 12), "cut.png"); });
  EXPECT_NE(err.find("before the IEND chunk (truncated)"), std::string::npos) << err;
  err = ls::test::error_of([&] { read_png_text(Bytes(png.begin(), png.end() - 13), "cut.png"); });
  EXPECT_NE(err.find("(truncated)"), std::string::npos) << err;
}

TEST(PngText, RefusesNonPngsAndBrokenText) {
  std::string err = ls::test::error_of([] { read_png_text(Bytes{0xFF, 0xD8, 0xFF, 0xE0}, "photo.jpg"); });
  EXPECT_NE(err.find("photo.jpg: not a PNG file"), std::string::npos) << err;
  // A zTXt whose zlib stream is cut short (the CRC is right: the writer itself was wrong).
  std::string z = zlib_compress(std::string(300, 'a'));
  Bytes png = tiny_png({chunk("zTXt", std::string("k\0\0", 3) + z.substr(0, z.size() - 3))});
  err = ls::test::error_of([&] { read_png_text(png, "z.png"); });
  EXPECT_NE(err.find("z.png: zTXt chunk at byte 33: the compressed text is corrupt"), std::string::npos) << err;
  Bytes bad_utf8 = tiny_png({chunk("iTXt", std::string("k\0\0\0\0\0\xff", 7))});
  err = ls::test::error_of([&] { read_png_text(bad_utf8, "u.png"); });
  EXPECT_NE(err.find("not valid UTF-8"), std::string::npos) << err;
  Bytes ihdr_late = tiny_png({});
  std::rotate(ihdr_late.begin() + 8, ihdr_late.begin() + 33, ihdr_late.end() - 12);  // IDAT before IHDR
  err = ls::test::error_of([&] { read_png_text(ihdr_late, "order.png"); });
  EXPECT_NE(err.find("not a 13-byte IHDR"), std::string::npos) << err;
}

TEST(PngText, RefusesBadKeysAndValues) {
  Bytes png = tiny_png({});
  EXPECT_NE(ls::test::error_of([&] { png_with_text(png, {{"", "v"}}); }).find("1 to 79"), std::string::npos);
  EXPECT_NE(ls::test::error_of([&] { png_with_text(png, {{std::string(80, 'k'), "v"}}); }).find("1 to 79"),
            std::string::npos);
  EXPECT_NE(ls::test::error_of([&] { png_with_text(png, {{" lead", "v"}}); }).find("spaces"), std::string::npos);
  EXPECT_NE(ls::test::error_of([&] { png_with_text(png, {{"a  b", "v"}}); }).find("spaces"), std::string::npos);
  EXPECT_NE(ls::test::error_of([&] { png_with_text(png, {{"\xe7\x8c\xab", "v"}}); }).find("Latin-1"),
            std::string::npos);
  EXPECT_NE(ls::test::error_of([&] { png_with_text(png, {{"k", "v"}, {"k", "w"}}); }).find("twice"),
            std::string::npos);
  EXPECT_NE(ls::test::error_of([&] { png_with_text(png, {{"k", "\xc3"}}); }).find("UTF-8"), std::string::npos);
  EXPECT_NE(ls::test::error_of([&] { png_with_text(png, {{"k", std::string("a\0b", 3)}}); }).find("NUL"),
            std::string::npos);
  // 79 Latin-1 characters (two UTF-8 bytes each) are a valid keyword.
  std::string key79;
  for (int i = 0; i < 79; ++i) key79 += "\xc3\xa9";
  EXPECT_EQ(read_png_text(png_with_text(png, {{key79, "v"}}), "k.png").at(key79), "v");
}

}  // namespace png_text_test
