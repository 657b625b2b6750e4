// The damaged-image corpus (see image_corpus.h). Valid bases come from OpenCV's encoders at fixed
// settings; bombs and EXIF variants are assembled byte by byte (PNG chunks with their CRCs, JPEG
// SOF fields, WebP VP8L/VP8X headers, BMP info headers) so that only the intended field lies.
#include "support/image_corpus.h"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "core/rng.h"

namespace ls::test {
namespace {

using Bytes = std::vector<uint8_t>;
using Expect = CorpusEntry::Expect;

void corpus_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}
void corpus_le(Bytes& b, uint32_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void corpus_text(Bytes& b, const std::string& s) { b.insert(b.end(), s.begin(), s.end()); }

// Smooth gradients plus seeded noise: enough detail that every format stores real data.
cv::Mat corpus_pattern(int width, int height, int channels, int depth) {
  core::Rng rng(11, {static_cast<uint64_t>(width), static_cast<uint64_t>(channels), static_cast<uint64_t>(depth)});
  cv::Mat m(height, width, CV_MAKETYPE(depth, channels));
  const double top = depth == CV_16U ? 65535.0 : 255.0;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c) {
        const double v = (c == 3 ? 0.3 + 0.7 * x / width : (x * (c + 1) + y * (3 - c)) / double(width + height * 3)) * 0.8 +
                         0.2 * rng.uniform();
        const double value = std::min(top, v * top);
        if (depth == CV_16U) m.ptr<uint16_t>(y)[x * channels + c] = static_cast<uint16_t>(value);
        else m.ptr<uint8_t>(y)[x * channels + c] = static_cast<uint8_t>(value);
      }
  return m;
}

Bytes corpus_encode(const cv::Mat& m, const std::string& ext, const std::vector<int>& params = {}) {
  Bytes out;
  LS_CHECK(cv::imencode(ext, m, out, params), "image corpus: OpenCV cannot encode ", ext);
  return out;
}

Bytes corpus_png_chunk(const std::string& type, const Bytes& data) {
  Bytes c;
  corpus_be32(c, static_cast<uint32_t>(data.size()));
  corpus_text(c, type);
  c.insert(c.end(), data.begin(), data.end());
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), c.data() + 4, static_cast<uInt>(c.size() - 4));
  corpus_be32(c, static_cast<uint32_t>(crc));
  return c;
}

// A PNG of any declared size whose IDAT holds `idat` (a zlib stream), CRCs correct.
Bytes corpus_png(uint32_t width, uint32_t height, uint8_t depth, uint8_t color, const Bytes& idat) {
  Bytes out = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  Bytes ihdr;
  corpus_be32(ihdr, width);
  corpus_be32(ihdr, height);
  ihdr.insert(ihdr.end(), {depth, color, 0, 0, 0});
  for (const Bytes& c : {corpus_png_chunk("IHDR", ihdr), corpus_png_chunk("IDAT", idat), corpus_png_chunk("IEND", {})})
    out.insert(out.end(), c.begin(), c.end());
  return out;
}

Bytes corpus_zlib(const Bytes& raw) {
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  Bytes z(size);
  LS_CHECK(compress2(z.data(), &size, raw.data(), static_cast<uLong>(raw.size()), 9) == Z_OK, "image corpus: zlib");
  z.resize(size);
  return z;
}

// A zlib stream inflating to `mib` MiB of zeros, made in milliseconds: one full-flushed deflate
// block of 1 MiB (self-contained: a full flush resets the window) repeated, an empty final block,
// and the Adler-32 of the whole, so the stream is valid to its end.
Bytes corpus_zlib_zeros(uint32_t mib) {
  const Bytes zeros(1 << 20, 0);
  z_stream z{};
  LS_CHECK(deflateInit(&z, 9) == Z_OK, "image corpus: deflateInit");
  Bytes block(1 << 16);
  z.next_in = const_cast<Bytef*>(zeros.data());
  z.avail_in = static_cast<uInt>(zeros.size());
  z.next_out = block.data();
  z.avail_out = static_cast<uInt>(block.size());
  LS_CHECK(deflate(&z, Z_FULL_FLUSH) == Z_OK && z.avail_in == 0, "image corpus: deflate");
  block.resize(block.size() - z.avail_out);
  deflateEnd(&z);
  Bytes out(block.begin(), block.begin() + 2);  // the zlib header
  uLong adler = adler32(0L, Z_NULL, 0);
  const uLong one = adler32(adler, zeros.data(), static_cast<uInt>(zeros.size()));
  for (uint32_t i = 0; i < mib; ++i) {
    out.insert(out.end(), block.begin() + 2, block.end());
    adler = adler32_combine(adler, one, static_cast<z_off_t>(zeros.size()));
  }
  out.insert(out.end(), {0x03, 0x00});  // BFINAL, fixed codes, end of block
  corpus_be32(out, static_cast<uint32_t>(adler));
  return out;
}

// TIFF block (little-endian) whose IFD0 holds only the Orientation tag.
Bytes corpus_tiff_orientation(int orientation) {
  Bytes b;
  corpus_text(b, "II");
  corpus_le(b, 42, 2);
  corpus_le(b, 8, 4);
  corpus_le(b, 1, 2);
  corpus_le(b, 0x0112, 2);
  corpus_le(b, 3, 2);
  corpus_le(b, 1, 4);
  corpus_le(b, static_cast<uint32_t>(orientation), 2);
  corpus_le(b, 0, 2);
  corpus_le(b, 0, 4);
  return b;
}

Bytes corpus_png_exif(const Bytes& png, int orientation) {
  Bytes out(png.begin(), png.begin() + 33);  // signature + IHDR
  const Bytes chunk = corpus_png_chunk("eXIf", corpus_tiff_orientation(orientation));
  out.insert(out.end(), chunk.begin(), chunk.end());
  out.insert(out.end(), png.begin() + 33, png.end());
  return out;
}

Bytes corpus_jpeg_exif(const Bytes& jpeg, int orientation) {
  return jpeg_with_exif_segment(jpeg, corpus_tiff_orientation(orientation));
}

// The JPEG with its SOF's height and width replaced (the first SOF0/SOF2 segment).
Bytes corpus_jpeg_size(Bytes jpeg, uint16_t width, uint16_t height) {
  for (size_t i = 2; i + 9 < jpeg.size(); ++i)
    if (jpeg[i] == 0xFF && (jpeg[i + 1] == 0xC0 || jpeg[i + 1] == 0xC2)) {
      jpeg[i + 5] = static_cast<uint8_t>(height >> 8), jpeg[i + 6] = static_cast<uint8_t>(height);
      jpeg[i + 7] = static_cast<uint8_t>(width >> 8), jpeg[i + 8] = static_cast<uint8_t>(width);
      return jpeg;
    }
  LS_FAIL("image corpus: no SOF0/SOF2 marker in the base JPEG");
}

// A simple-format lossless WebP (RIFF, VP8L at offset 12) with its 14-bit sizes replaced.
Bytes corpus_vp8l_size(Bytes webp, uint32_t width, uint32_t height) {
  LS_CHECK(std::string(webp.begin() + 12, webp.begin() + 16) == "VP8L", "image corpus: base WebP is not VP8L");
  uint32_t bits = webp[21] | webp[22] << 8 | webp[23] << 16 | static_cast<uint32_t>(webp[24]) << 24;
  bits = (bits & ~0x0FFFFFFFu) | (width - 1) | (height - 1) << 14;
  for (int i = 0; i < 4; ++i) webp[21 + static_cast<size_t>(i)] = static_cast<uint8_t>(bits >> (8 * i));
  return webp;
}

// Simple-format WebP -> extended: a VP8X chunk declaring the canvas, then the image chunk as it was.
Bytes corpus_vp8x_canvas(const Bytes& webp, uint32_t width, uint32_t height) {
  Bytes body;
  corpus_text(body, "WEBPVP8X");
  corpus_le(body, 10, 4);
  body.insert(body.end(), {0x10, 0, 0, 0});  // alpha flag
  corpus_le(body, width - 1, 3);
  corpus_le(body, height - 1, 3);
  body.insert(body.end(), webp.begin() + 12, webp.end());
  Bytes out;
  corpus_text(out, "RIFF");
  corpus_le(out, static_cast<uint32_t>(body.size()), 4);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// BITMAPFILEHEADER + BITMAPINFOHEADER declaring width x height, followed by `pixels` as they are.
Bytes corpus_bmp(int32_t width, int32_t height, uint16_t bpp, uint32_t compression, const Bytes& palette,
                 const Bytes& pixels) {
  Bytes b;
  corpus_text(b, "BM");
  const uint32_t offset = 14 + 40 + static_cast<uint32_t>(palette.size());
  corpus_le(b, offset + static_cast<uint32_t>(pixels.size()), 4);
  corpus_le(b, 0, 4);
  corpus_le(b, offset, 4);
  corpus_le(b, 40, 4);
  corpus_le(b, static_cast<uint32_t>(width), 4);
  corpus_le(b, static_cast<uint32_t>(height), 4);
  corpus_le(b, 1, 2);
  corpus_le(b, bpp, 2);
  corpus_le(b, compression, 4);
  corpus_le(b, static_cast<uint32_t>(pixels.size()), 4);
  corpus_le(b, 2835, 4);
  corpus_le(b, 2835, 4);
  corpus_le(b, static_cast<uint32_t>(palette.size() / 4), 4);
  corpus_le(b, 0, 4);
  b.insert(b.end(), palette.begin(), palette.end());
  b.insert(b.end(), pixels.begin(), pixels.end());
  return b;
}

struct Base {
  std::string stem, ext;
  Bytes bytes;
  int width, height;  // displayed
  bool checksummed;   // PNG: every byte is under a CRC, so every flip is found
};

std::vector<Base> corpus_bases() {
  const int W = 48, H = 32;
  const cv::Mat rgb = corpus_pattern(W, H, 3, CV_8U), rgba = corpus_pattern(W, H, 4, CV_8U);
  const cv::Mat gray = corpus_pattern(W, H, 1, CV_8U), gray16 = corpus_pattern(W, H, 1, CV_16U);
  const cv::Mat rgba16 = corpus_pattern(W, H, 4, CV_16U);
  const Bytes jpeg = corpus_encode(rgb, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 90});
  return {
      {"png_rgb", ".png", corpus_encode(rgb, ".png"), W, H, true},
      {"png_rgba", ".png", corpus_encode(rgba, ".png"), W, H, true},
      {"png_gray", ".png", corpus_encode(gray, ".png"), W, H, true},
      {"png_gray16", ".png", corpus_encode(gray16, ".png"), W, H, true},
      {"png_rgba16", ".png", corpus_encode(rgba16, ".png"), W, H, true},
      {"png_exif6", ".png", corpus_png_exif(corpus_encode(rgb, ".png"), 6), H, W, true},
      {"jpg_baseline", ".jpg", jpeg, W, H, false},
      {"jpg_progressive", ".jpg", corpus_encode(rgb, ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}), W, H, false},
      {"jpg_gray", ".jpg", corpus_encode(gray, ".jpg"), W, H, false},
      {"jpg_exif6", ".jpeg", corpus_jpeg_exif(jpeg, 6), H, W, false},
      {"webp_lossy", ".webp", corpus_encode(rgb, ".webp", {cv::IMWRITE_WEBP_QUALITY, 80}), W, H, false},
      {"webp_lossless_alpha", ".webp", corpus_encode(rgba, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}), W, H, false},
      {"bmp_rgb", ".bmp", corpus_encode(rgb, ".bmp"), W, H, false},
      {"bmp_gray", ".bmp", corpus_encode(gray, ".bmp"), W, H, false},
  };
}

void corpus_add_damage(const Base& b, uint64_t base_index, std::vector<CorpusEntry>& out) {
  for (int k = 1; k < 16; ++k) {
    CorpusEntry e;
    e.name = b.stem + ".cut" + std::to_string(k) + "of16" + b.ext;
    e.kind = "truncated";
    e.bytes.assign(b.bytes.begin(), b.bytes.begin() + static_cast<long>(b.bytes.size() * static_cast<size_t>(k) / 16));
    e.expect = Expect::kRefused;
    out.push_back(std::move(e));
  }
  const int flips[] = {1, 1, 2, 4, 8, 32};
  for (size_t v = 0; v < std::size(flips); ++v) {
    CorpusEntry e;
    e.name = b.stem + ".flip" + std::to_string(v) + "x" + std::to_string(flips[v]) + b.ext;
    e.kind = "flipped";
    e.bytes = b.bytes;
    core::Rng rng(2026, {base_index, v});
    for (int i = 0; i < flips[v]; ++i)
      e.bytes[rng.below(e.bytes.size())] ^= static_cast<uint8_t>(1 + rng.below(255));
    e.expect = b.checksummed ? Expect::kRefused : Expect::kEither;
    out.push_back(std::move(e));
  }
}

CorpusEntry corpus_entry(std::string name, std::string kind, Bytes bytes, Expect expect, std::string refusal = "",
                         int width = 0, int height = 0) {
  CorpusEntry e;
  e.name = std::move(name);
  e.kind = std::move(kind);
  e.bytes = std::move(bytes);
  e.expect = expect;
  e.refusal = std::move(refusal);
  e.width = width;
  e.height = height;
  return e;
}

void corpus_add_bombs(const std::vector<Base>& bases, std::vector<CorpusEntry>& out) {
  const auto& jpeg = bases[6].bytes;
  const auto& vp8l = bases[11].bytes;
  const Bytes tiny_idat = corpus_zlib(Bytes(64, 0));
  const std::string over = "over the limit of 178956970", forged = "fewer than any encoder writes";
  out.push_back(corpus_entry("bomb_png_100000x100000.png", "bomb", corpus_png(100000, 100000, 8, 2, tiny_idat),
                             Expect::kRefused, over));
  // 13378 x 13377 = 178,957,506: the smallest square-ish size just over Pillow's threshold.
  out.push_back(corpus_entry("bomb_png_13378x13377.png", "bomb", corpus_png(13378, 13377, 8, 0, tiny_idat),
                             Expect::kRefused, over));
  out.push_back(corpus_entry("bomb_png_1x178956971.png", "bomb", corpus_png(1, 178956971, 8, 0, tiny_idat),
                             Expect::kRefused, over));
  // At the limit exactly: allowed by it, and 64 zeros of IDAT cannot hold 1 x 178,956,970 samples.
  out.push_back(corpus_entry("bomb_png_1x178956970.png", "bomb", corpus_png(1, 178956970, 8, 0, tiny_idat),
                             Expect::kRefused, forged));
  out.push_back(corpus_entry("bomb_png_12000x12000_tiny_idat.png", "bomb", corpus_png(12000, 12000, 8, 2, tiny_idat),
                             Expect::kRefused, forged));
  // 1024 x 1024 gray needs 1 MiB + 1 KiB inflated; the stream goes on to 1 GiB of zeros.
  out.push_back(corpus_entry("bomb_png_zlib_1gib.png", "bomb", corpus_png(1024, 1024, 8, 0, corpus_zlib_zeros(1024)),
                             Expect::kEither));
  // A legitimate 4096 x 4096 black PNG of 16 KiB (1000:1): must still decode.
  Bytes rows;
  for (int y = 0; y < 4096; ++y) rows.resize(rows.size() + 4097, 0);
  out.push_back(corpus_entry("flat_png_4096x4096.png", "bomb", corpus_png(4096, 4096, 8, 0, corpus_zlib(rows)),
                             Expect::kImage, "", 4096, 4096));
  out.push_back(corpus_entry("bomb_jpg_65535x65535.jpg", "bomb", corpus_jpeg_size(jpeg, 65535, 65535), Expect::kRefused,
                             over));
  out.push_back(corpus_entry("bomb_jpg_12000x12000.jpg", "bomb", corpus_jpeg_size(jpeg, 12000, 12000), Expect::kRefused,
                             forged));
  out.push_back(corpus_entry("bomb_jpg_1x65535.jpg", "bomb", corpus_jpeg_size(jpeg, 1, 65535), Expect::kEither));
  out.push_back(corpus_entry("bomb_webp_vp8l_16384x16384.webp", "bomb", corpus_vp8l_size(vp8l, 16384, 16384),
                             Expect::kRefused, over));
  out.push_back(corpus_entry("bomb_webp_vp8x_16384x16384.webp", "bomb", corpus_vp8x_canvas(vp8l, 16384, 16384),
                             Expect::kRefused, over));
  // Under the limit, lossless WebP has no size bound (a flat image codes in a few bytes): the
  // decoder allocates 2000 x 2000 and then finds the bitstream is for 48 x 32.
  out.push_back(corpus_entry("bomb_webp_vp8l_2000x2000.webp", "bomb", corpus_vp8l_size(vp8l, 2000, 2000),
                             Expect::kEither));
  out.push_back(corpus_entry("bomb_bmp_100000x100000.bmp", "bomb", corpus_bmp(100000, 100000, 24, 0, {}, Bytes(64, 7)),
                             Expect::kRefused, over));
  out.push_back(corpus_entry("bomb_bmp_12000x12000.bmp", "bomb", corpus_bmp(12000, 12000, 24, 0, {}, Bytes(64, 7)),
                             Expect::kRefused, "pixel data needs"));
  // RLE8 that ends at once (end-of-bitmap): valid, every pixel palette entry 0.
  Bytes palette(8, 0);
  palette[4] = palette[5] = palette[6] = 255;
  out.push_back(corpus_entry("bomb_bmp_rle8_2000x2000.bmp", "bomb", corpus_bmp(2000, 2000, 8, 1, palette, {0, 1}),
                             Expect::kEither));
}

void corpus_add_misnamed(const std::vector<Base>& bases, std::vector<CorpusEntry>& out) {
  const cv::Mat rgb = corpus_pattern(48, 32, 3, CV_8U);
  out.push_back(corpus_entry("jpeg_named.png", "extension", bases[6].bytes, Expect::kImage, "", 48, 32));
  out.push_back(corpus_entry("png_named.jpg", "extension", bases[0].bytes, Expect::kImage, "", 48, 32));
  out.push_back(corpus_entry("webp_named.bmp", "extension", bases[10].bytes, Expect::kImage, "", 48, 32));
  out.push_back(corpus_entry("bmp_named.webp", "extension", bases[12].bytes, Expect::kImage, "", 48, 32));
  const std::string not_ours = "not a PNG, JPEG, WebP or BMP";
  Bytes text;
  corpus_text(text, "a photo of a cat, sitting on a chair\n");
  out.push_back(corpus_entry("caption_named.jpg", "not_image", text, Expect::kRefused, not_ours));
  Bytes html;
  corpus_text(html, "<!DOCTYPE html><html><body>403 Forbidden</body></html>\n");
  out.push_back(corpus_entry("error_page.png", "not_image", html, Expect::kRefused, not_ours));
  out.push_back(corpus_entry("empty.png", "not_image", {}, Expect::kRefused, "empty file"));
  // Formats OpenCV would decode, refused by lorastudio (only PNG/JPEG/WebP/BMP headers are read).
  out.push_back(corpus_entry("tiff_named.png", "not_image", corpus_encode(rgb, ".tiff"), Expect::kRefused, not_ours));
  out.push_back(corpus_entry("ppm_named.jpg", "not_image", corpus_encode(rgb, ".ppm"), Expect::kRefused, not_ours));
  Bytes gif;
  corpus_text(gif, "GIF89a");
  gif.insert(gif.end(), {48, 0, 32, 0, 0, 0, 0, 0x3B});
  out.push_back(corpus_entry("gif_named.webp", "not_image", gif, Expect::kRefused, not_ours));
  CorpusEntry folder = corpus_entry("folder.png", "folder", {}, Expect::kRefused, "is a folder");
  folder.folder = true;
  out.push_back(std::move(folder));
}

}  // namespace

Bytes jpeg_with_exif_segment(const Bytes& jpeg, const Bytes& tiff) {
  Bytes seg = {0xFF, 0xE1};
  const size_t length = 2 + 6 + tiff.size();
  seg.push_back(static_cast<uint8_t>(length >> 8));
  seg.push_back(static_cast<uint8_t>(length));
  corpus_text(seg, std::string("Exif\0\0", 6));
  seg.insert(seg.end(), tiff.begin(), tiff.end());
  Bytes out(jpeg.begin(), jpeg.begin() + 2);
  out.insert(out.end(), seg.begin(), seg.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

std::vector<CorpusEntry> image_corpus() {
  const std::vector<Base> bases = corpus_bases();
  std::vector<CorpusEntry> out;
  for (size_t i = 0; i < bases.size(); ++i) {
    const Base& b = bases[i];
    out.push_back(corpus_entry(b.stem + b.ext, "valid", b.bytes, Expect::kImage, "", b.width, b.height));
    corpus_add_damage(b, i, out);
  }
  corpus_add_bombs(bases, out);
  corpus_add_misnamed(bases, out);
  return out;
}

void write_corpus(const std::filesystem::path& dir, const std::vector<CorpusEntry>& corpus) {
  std::filesystem::create_directories(dir);
  for (const CorpusEntry& e : corpus) {
    if (e.folder) {
      std::filesystem::create_directories(dir / e.name);
      continue;
    }
    std::ofstream out(dir / e.name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(e.bytes.data()), static_cast<std::streamsize>(e.bytes.size()));
    LS_CHECK(out.good(), (dir / e.name).string(), ": cannot write the corpus file");
  }
}

}  // namespace ls::test
