// Header walkers for PNG, JPEG, WebP and BMP over one byte-source interface, so that the same
// code serves decoded files (bytes in memory) and the size-only path (a few reads of the file).
#include "io/image_header.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace ls::io {
namespace {

// EXIF payloads larger than this are not read in full (IFD0 sits near the start in practice).
constexpr size_t kMaxExifRead = 1 << 20;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t le24(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16;
}
uint32_t le32(const uint8_t* p) { return le24(p) | static_cast<uint32_t>(p[3]) << 24; }

class Source {
 public:
  virtual ~Source() = default;
  virtual uint64_t size() const = 0;
  /// Copies [offset, offset + n) into out; false when that runs past the end.
  virtual bool read(uint64_t offset, size_t n, uint8_t* out) = 0;
  /// All the bytes when they are in memory (needed by the completeness checks), else nullptr.
  virtual const uint8_t* data() const { return nullptr; }

  std::vector<uint8_t> read_vector(uint64_t offset, size_t n) {
    std::vector<uint8_t> out(n);
    if (!read(offset, n, out.data())) out.clear();
    return out;
  }
};

class MemorySource : public Source {
 public:
  MemorySource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, size_t n, uint8_t* out) override {
    if (offset > size_ || n > size_ - offset) return false;
    if (n != 0) std::memcpy(out, data_ + offset, n);  // out may be an empty vector's null data()
    return true;
  }
  const uint8_t* data() const override { return data_; }

 private:
  const uint8_t* data_;
  size_t size_;
};

// Serves the first 64 KiB (where JPEG/PNG headers live) from one read; seeks for the rest.
class FileSource : public Source {
 public:
  explicit FileSource(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "rb");
    LS_CHECK(file_ != nullptr, path, ": cannot open for reading (", std::strerror(errno),
             "); check the path");
    ::fseeko(file_, 0, SEEK_END);
    size_ = static_cast<uint64_t>(::ftello(file_));
    prefix_.resize(static_cast<size_t>(std::min<uint64_t>(size_, 64 * 1024)));
    ::fseeko(file_, 0, SEEK_SET);
    LS_CHECK(std::fread(prefix_.data(), 1, prefix_.size(), file_) == prefix_.size(), path,
             ": read failed (", std::strerror(errno), ")");
  }
  ~FileSource() override { std::fclose(file_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, size_t n, uint8_t* out) override {
    if (offset > size_ || n > size_ - offset) return false;
    if (offset + n <= prefix_.size()) {
      std::memcpy(out, prefix_.data() + offset, n);
      return true;
    }
    if (::fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0) return false;
    return std::fread(out, 1, n, file_) == n;
  }
  const std::vector<uint8_t>& prefix() const { return prefix_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  uint64_t size_ = 0;
  std::vector<uint8_t> prefix_;
};

void read_exif(Source& src, uint64_t offset, uint64_t length, ImageHeader& h) {
  std::vector<uint8_t> exif =
      src.read_vector(offset, static_cast<size_t>(std::min<uint64_t>(length, kMaxExifRead)));
  h.orientation = tiff_orientation(exif.data(), exif.size());
}

void set_size(ImageHeader& h, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0 || width > (1 << 30) || height > (1 << 30)) {
    h.problem = str_cat("implausible size ", width, "x", height, " in the header");
    return;
  }
  h.width = static_cast<int>(width);
  h.height = static_cast<int>(height);
}

// Inflated pixel data holds at least width x height x bits-per-pixel bits, whatever the filter
// bytes and interlacing add; one deflate byte inflates to at most 1032 (a 258-byte match coded in
// two 1-bit codes), so fewer IDAT bytes than this cannot be a whole image.
uint64_t png_min_coded_bytes(const ImageHeader& h, uint8_t bit_depth, uint8_t color_type) {
  static const int kChannels[7] = {1, 0, 3, 1, 2, 0, 4};  // by colour type (1 and 5 invalid)
  const int channels = color_type < 7 ? kChannels[color_type] : 0;
  if (bit_depth > 16) return 0;  // invalid: the decoder refuses it, and 2^57 x depth x 4 must not wrap
  const uint64_t pixels = static_cast<uint64_t>(h.width) * static_cast<uint64_t>(h.height);  // < 2^60
  return pixels / 8 * uint64_t{bit_depth} * static_cast<uint64_t>(channels) / 1032;
}

// Chunks: length (BE32), type, data, CRC. eXIf counts only before IDAT, as the PNG spec orders
// it, so the size-only walk can stop at the first IDAT and still agree with the decoder.
void parse_png(Source& src, bool full, ImageHeader& h) {
  uint64_t pos = 8;
  bool first = true, seen_idat = false, seen_exif = false;
  while (true) {
    uint8_t head[8];
    if (!src.read(pos, 8, head)) {
      h.problem = pos == src.size() ? "no IEND chunk" : "ends inside a chunk header";
      return;
    }
    const uint32_t length = be32(head);
    const std::string type(reinterpret_cast<const char*>(head) + 4, 4);
    if (length > 0x7FFFFFFFu) {
      h.problem = str_cat("chunk ", type, " claims ", length, " bytes");
      return;
    }
    const uint64_t end = pos + 12 + length;
    if (type == "IDAT" && !first && !full) return;  // the size-only walk ends at the pixels
    if (end > src.size()) {
      h.problem = str_cat("ends inside the ", type, " chunk");
      return;
    }
    if (first) {
      uint8_t ihdr[10];
      if (type != "IHDR" || length != 13 || !src.read(pos + 8, 10, ihdr)) {
        h.problem = "first chunk is not IHDR";
        return;
      }
      set_size(h, be32(ihdr), be32(ihdr + 4));
      if (!h.problem.empty()) return;
      h.min_coded_bytes = png_min_coded_bytes(h, ihdr[8], ihdr[9]);
      first = false;
    } else if (type == "eXIf" && !seen_idat && !seen_exif) {
      read_exif(src, pos + 8, length, h);
      seen_exif = true;
    } else if (type == "IDAT") {
      seen_idat = true;
      h.coded_bytes += length;
    } else if (type == "IEND") {
      if (!seen_idat) h.problem = "no IDAT chunk";
      return;
    }
    pos = end;
  }
}

bool is_sof(uint8_t marker) {
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

// Every MCU of a Huffman-coded scan starts with a DC code of at least one bit, and an image has
// ceil(W / 8Hmax) x ceil(H / 8Vmax) MCUs (sampling factors from the SOF's component list).
// Arithmetic coding (SOF9..15 except the DHT-like C8/CC) and hierarchical frames (C5..C7) get no bound.
uint64_t jpeg_min_coded_bytes(Source& src, uint8_t marker, uint64_t payload, uint64_t length, const ImageHeader& h) {
  if (h.width == 0 || marker >= 0xC5) return 0;
  uint8_t count = 0;
  if (length < 6 || !src.read(payload + 5, 1, &count) || length < 6 + 3 * uint64_t{count}) return 0;
  int hmax = 1, vmax = 1;
  for (uint8_t c = 0; c < count; ++c) {
    uint8_t comp[3];
    if (!src.read(payload + 6 + 3 * uint64_t{c}, 3, comp)) return 0;
    hmax = std::max(hmax, comp[1] >> 4);
    vmax = std::max(vmax, comp[1] & 15);
  }
  const uint64_t cols = (static_cast<uint64_t>(h.width) + 8 * hmax - 1) / (8 * hmax);
  const uint64_t rows = (static_cast<uint64_t>(h.height) + 8 * vmax - 1) / (8 * vmax);
  return cols * rows / 8;
}

// Segments up to SOS: FF <marker> <BE16 length incl. itself> <payload>. The first APP1 starting
// "Exif\0\0" carries the TIFF block. With `full`, an EOI must follow the first scan.
void parse_jpeg(Source& src, bool full, ImageHeader& h) {
  uint64_t pos = 2;
  bool seen_exif = false, seen_sof = false;
  while (true) {
    uint8_t m[4];
    if (!src.read(pos, 2, m)) {
      h.problem = "ends before the image data (no SOS marker)";
      return;
    }
    if (m[0] != 0xFF) {
      h.problem = str_cat("no marker at offset ", pos);
      return;
    }
    const uint8_t marker = m[1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // standalone markers
      pos += 2;
      continue;
    }
    if (marker == 0xD9) {
      h.problem = "EOI marker before any image data";
      return;
    }
    if (!src.read(pos + 2, 2, m + 2) || be16(m + 2) < 2) {
      h.problem = str_cat("bad segment length at offset ", pos);
      return;
    }
    const uint64_t length = be16(m + 2) - 2u, payload = pos + 4;
    if (payload + length > src.size()) {
      h.problem = str_cat("ends inside a segment (marker FF", std::hex, int{marker}, ")");
      return;
    }
    if (marker == 0xE1 && !seen_exif && length >= 6) {
      uint8_t sig[6];
      if (src.read(payload, 6, sig) && std::memcmp(sig, "Exif\0\0", 6) == 0) {
        read_exif(src, payload + 6, length - 6, h);
        seen_exif = true;
      }
    } else if (is_sof(marker) && !seen_sof && length >= 5) {
      uint8_t sof[5];
      src.read(payload, 5, sof);
      // Height 0 means "given later by a DNL marker": leave the size unknown (decode finds it).
      if (be16(sof + 1) != 0) set_size(h, be16(sof + 3), be16(sof + 1));
      if (!h.problem.empty()) return;
      h.min_coded_bytes = jpeg_min_coded_bytes(src, marker, payload, length, h);
      seen_sof = true;
    } else if (marker == 0xDA) {
      if (!seen_sof) h.problem = "no SOF marker before the image data";
      if (!full || !h.problem.empty()) return;
      const uint8_t* d = src.data();
      for (uint64_t i = src.size() - 1; i > payload + length; --i)
        if (d[i] == 0xD9 && d[i - 1] == 0xFF) {
          h.coded_bytes = i - 1 - (payload + length);
          return;
        }
      h.problem = "no EOI marker after the image data";
      return;
    }
    pos = payload + length;
  }
}

// RIFF "WEBP" chunks: FourCC, LE32 size, data padded to even. EXIF comes after the image data,
// so the size-only path reads every chunk header (a handful of seeks).
void parse_webp(Source& src, bool full, ImageHeader& h) {
  uint8_t riff[12];
  src.read(0, 12, riff);
  const uint64_t declared_end = 8 + uint64_t{le32(riff + 4)};
  if (full && declared_end > src.size()) {
    h.problem = str_cat("RIFF header says ", declared_end, " bytes, the data has ", src.size());
    return;
  }
  const uint64_t limit = std::min(declared_end, src.size());
  bool seen_exif = false, seen_vp8x = false, seen_image = false;
  uint64_t pos = 12;
  while (pos + 8 <= limit) {
    uint8_t head[8];
    src.read(pos, 8, head);
    const std::string fourcc(reinterpret_cast<const char*>(head), 4);
    const uint64_t length = le32(head + 4), data = pos + 8;
    // A cut inside the image chunk leaves its header readable: the size-only path answers.
    const bool overrun = data + length > src.size();
    if (overrun && (full || (fourcc != "VP8 " && fourcc != "VP8L"))) {
      h.problem = str_cat("ends inside the ", fourcc, " chunk");
      return;
    }
    uint8_t b[10] = {};
    if (fourcc == "VP8X" && length >= 10 && src.read(data, 10, b)) {
      set_size(h, int64_t{le24(b + 4)} + 1, int64_t{le24(b + 7)} + 1);
      seen_vp8x = true;
    } else if (fourcc == "VP8 " && length >= 10 && src.read(data, 10, b)) {
      if (b[3] != 0x9D || b[4] != 0x01 || b[5] != 0x2A) {
        h.problem = "VP8 chunk without the key-frame start code";
        return;
      }
      if (!seen_vp8x) set_size(h, le16(b + 6) & 0x3FFF, le16(b + 8) & 0x3FFF);
      seen_image = true;
    } else if (fourcc == "VP8L" && length >= 5 && src.read(data, 5, b)) {
      if (b[0] != 0x2F) {
        h.problem = "VP8L chunk without its signature byte";
        return;
      }
      // 14 bits width-1, then 14 bits height-1, least significant bit first.
      const uint32_t bits = le32(b + 1);
      if (!seen_vp8x) set_size(h, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1);
      seen_image = true;
    } else if (fourcc == "ANMF") {
      // Animation: the decoder reports what it thinks of it; the size is the VP8X canvas, which
      // the container spec puts first (without it there is no size to answer with).
      if (!seen_vp8x) h.problem = "ANMF (animation) chunk without a VP8X header";
      seen_image = true;
    } else if (fourcc == "EXIF" && !seen_exif) {
      read_exif(src, data, length, h);
      seen_exif = true;
    }
    // A cut image chunk is answered only when its header was readable (else: no size to give).
    if (overrun && !seen_image && h.problem.empty()) h.problem = str_cat("ends inside the ", fourcc, " chunk");
    if (!h.problem.empty() || overrun) return;
    pos = data + length + (length & 1);
  }
  if (!seen_image) h.problem = "no VP8/VP8L image chunk";
}

// BITMAPFILEHEADER (14 bytes) + BITMAPCOREHEADER (12) or BITMAPINFOHEADER and later (>= 40).
void parse_bmp(Source& src, bool full, ImageHeader& h) {
  uint8_t b[34] = {};
  if (!src.read(0, 26, b)) {
    h.problem = "shorter than a BMP header";
    return;
  }
  const uint32_t pixel_offset = le32(b + 10), dib = le32(b + 14);
  int64_t width = 0, height = 0;
  uint32_t bpp = 0, compression = 0;
  if (dib == 12) {
    width = le16(b + 18);
    height = le16(b + 20);
    bpp = le16(b + 24);
  } else if (dib >= 40 && src.read(0, 34, b)) {
    width = static_cast<int32_t>(le32(b + 18));
    height = static_cast<int32_t>(le32(b + 22));  // negative: rows stored top-down
    bpp = le16(b + 28);
    compression = le32(b + 30);
  } else {
    h.problem = str_cat("unknown BMP info header of ", dib, " bytes");
    return;
  }
  set_size(h, width, height < 0 ? -height : height);
  if (!full || !h.problem.empty()) return;
  if (bpp == 0 || bpp > 64) {  // also keeps row x height below 2^64 in the size check below
    h.problem = str_cat("bit count ", bpp, " per pixel");
    return;
  }
  const bool uncompressed = compression == 0 || compression == 3 || compression == 6;
  const uint64_t row = (uint64_t{bpp} * static_cast<uint64_t>(h.width) + 31) / 32 * 4;
  const uint64_t needed = uncompressed ? row * static_cast<uint64_t>(h.height) : 1;
  if (uint64_t{pixel_offset} + needed > src.size())
    h.problem = str_cat("pixel data needs ", uint64_t{pixel_offset} + needed, " bytes, the data has ",
                        src.size());
}

ImageHeader parse(Source& src, const uint8_t* magic, size_t magic_size, bool full) {
  ImageHeader h;
  h.format = sniff_image_format(magic, magic_size);
  switch (h.format) {
    case ImageFormat::kPng: parse_png(src, full, h); break;
    case ImageFormat::kJpeg: parse_jpeg(src, full, h); break;
    case ImageFormat::kWebp: parse_webp(src, full, h); break;
    case ImageFormat::kBmp: parse_bmp(src, full, h); break;
    case ImageFormat::kUnknown: break;
  }
  return h;
}

}  // namespace

ImageFormat sniff_image_format(const uint8_t* data, size_t size) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) return ImageFormat::kPng;
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::kJpeg;
  if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0)
    return ImageFormat::kWebp;
  if (size >= 2 && data[0] == 'B' && data[1] == 'M') return ImageFormat::kBmp;
  return ImageFormat::kUnknown;
}

const char* image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

ImageHeader parse_image_header(const uint8_t* data, size_t size, bool check_complete) {
  MemorySource src(data, size);
  return parse(src, data, size, check_complete);
}

ImageHeader read_image_header(const std::string& path, uint64_t* file_size) {
  FileSource src(path);
  if (file_size) *file_size = src.size();
  return parse(src, src.prefix().data(), src.prefix().size(), false);
}

int tiff_orientation(const uint8_t* data, size_t size) {
  if (size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0) {
    data += 6;
    size -= 6;
  }
  if (size < 8) return 1;
  bool little;
  if (data[0] == 'I' && data[1] == 'I') little = true;
  else if (data[0] == 'M' && data[1] == 'M') little = false;
  else return 1;
  auto u16 = [&](size_t at) { return little ? le16(data + at) : be16(data + at); };
  auto u32 = [&](size_t at) { return little ? le32(data + at) : be32(data + at); };
  if (u16(2) != 42) return 1;
  const uint64_t ifd = u32(4);
  if (ifd + 2 > size) return 1;
  const unsigned count = u16(static_cast<size_t>(ifd));
  for (unsigned i = 0; i < count; ++i) {
    const uint64_t entry = ifd + 2 + 12 * uint64_t{i};
    if (entry + 12 > size) break;
    const size_t e = static_cast<size_t>(entry);
    if (u16(e) != 0x0112) continue;
    const unsigned type = u16(e + 2);  // 3 = SHORT (the standard), 4 = LONG (seen in the wild)
    const uint32_t value = type == 3 ? u16(e + 8) : type == 4 ? u32(e + 8) : 0;
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

}  // namespace ls::io
