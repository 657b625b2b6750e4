// PNG text chunks in memory: a strict chunk walker (signature, lengths, CRC-32, IEND), the three
// text chunk layouts of the PNG spec §11.3.3, and insertion before the first IDAT as PIL's PngInfo
// does.
#include "io/png_text_chunks.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <set>

#include "core/error.h"
#include "core/utf8.h"

namespace ls::io {
namespace png_text_detail {

constexpr std::array<uint8_t, 8> kSignature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
constexpr uint32_t kMaxChunkLength = 0x7FFFFFFFu;   // PNG spec §5.3: length < 2^31
constexpr size_t kMaxTextBytes = 64u << 20;          // decompressed text cap (zip bombs)
const char* const kBrokenAdvice = "the file is damaged; re-export or re-download the image";

struct Chunk {
  size_t offset = 0;  // of the length field
  uint32_t length = 0;
  std::string type;
  const uint8_t* data = nullptr;
  size_t total_size() const { return size_t{12} + length; }
};

uint32_t read_be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

void append_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

uint32_t chunk_crc(const uint8_t* type_and_data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  return static_cast<uint32_t>(crc32(crc, type_and_data, static_cast<uInt>(size)));
}

bool is_chunk_type(const uint8_t* p) {
  for (int i = 0; i < 4; ++i)
    if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z'))) return false;
  return true;
}

/// Every chunk up to and including IEND, all checked.
std::vector<Chunk> walk_chunks(const std::vector<uint8_t>& png, const std::string& name) {
  LS_CHECK(!png.empty(), name, ": the file is empty (0 bytes); re-export the image");
  LS_CHECK(png.size() >= kSignature.size() && std::equal(kSignature.begin(), kSignature.end(), png.begin()),
           name, ": not a PNG file (no PNG signature); text chunks can only be read from PNG images");
  std::vector<Chunk> chunks;
  size_t pos = kSignature.size();
  while (true) {
    LS_CHECK(pos + 8 <= png.size(), name, ": the file ends at byte ", png.size(),
             " before the IEND chunk (truncated); ", kBrokenAdvice);
    Chunk c;
    c.offset = pos;
    c.length = read_be32(&png[pos]);
    LS_CHECK(is_chunk_type(&png[pos + 4]), name, ": invalid chunk type bytes at byte ", pos + 4, "; ",
             kBrokenAdvice);
    c.type.assign(reinterpret_cast<const char*>(&png[pos + 4]), 4);
    LS_CHECK(c.length <= kMaxChunkLength, name, ": chunk '", c.type, "' at byte ", pos, " declares length ",
             c.length, ", above the PNG limit 2^31-1; ", kBrokenAdvice);
    LS_CHECK(png.size() - pos >= c.total_size(), name, ": chunk '", c.type, "' at byte ", pos, " needs ",
             c.total_size(), " bytes but the file ends at byte ", png.size(), " (truncated); ", kBrokenAdvice);
    c.data = &png[pos + 8];
    const uint32_t stored = read_be32(c.data + c.length);
    const uint32_t computed = chunk_crc(&png[pos + 4], size_t{4} + c.length);
    LS_CHECK(stored == computed, name, ": CRC mismatch in chunk '", c.type, "' at byte ", pos, " (stored ",
             std::hex, stored, ", computed ", computed, std::dec, "); ", kBrokenAdvice);
    if (chunks.empty())
      LS_CHECK(c.type == "IHDR" && c.length == 13, name, ": the first chunk is '", c.type,
               "', not a 13-byte IHDR; ", kBrokenAdvice);
    chunks.push_back(c);
    pos += c.total_size();
    if (c.type == "IEND") return chunks;  // bytes after IEND are ignored, as libpng and PIL do
  }
}

std::string latin1_to_utf8(const uint8_t* p, size_t n) {
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < 0x80) {
      out.push_back(static_cast<char>(p[i]));
    } else {
      out.push_back(static_cast<char>(0xC0 | p[i] >> 6));
      out.push_back(static_cast<char>(0x80 | (p[i] & 0x3F)));
    }
  }
  return out;
}

/// Latin-1 bytes of a UTF-8 string, or false when a code point is above U+00FF.
bool utf8_to_latin1(const std::string& utf8, std::string& out) {
  out.clear();
  for (size_t i = 0; i < utf8.size(); ++i) {
    const auto b = static_cast<uint8_t>(utf8[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
    } else if ((b == 0xC2 || b == 0xC3) && i + 1 < utf8.size()) {
      out.push_back(static_cast<char>(((b & 0x03) << 6) | (static_cast<uint8_t>(utf8[++i]) & 0x3F)));
    } else {
      return false;
    }
  }
  return true;
}

std::string inflate_text(const uint8_t* p, size_t n, const std::string& where) {
  z_stream zs{};
  LS_CHECK(inflateInit(&zs) == Z_OK, where, ": zlib initialisation failed");
  zs.next_in = const_cast<Bytef*>(p);
  zs.avail_in = static_cast<uInt>(n);
  std::string out;
  std::array<char, 16384> buffer;
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buffer.data());
    zs.avail_out = static_cast<uInt>(buffer.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buffer.data(), buffer.size() - zs.avail_out);
    if (out.size() > kMaxTextBytes) break;
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) rc = Z_BUF_ERROR;  // input ended early
  }
  const std::string zlib_message = zs.msg ? zs.msg : (rc == Z_BUF_ERROR ? "data ends early" : "error");
  inflateEnd(&zs);
  LS_CHECK(out.size() <= kMaxTextBytes, where, ": compressed text expands beyond ", kMaxTextBytes >> 20,
           " MiB; the file is not a normal image, re-export it");
  LS_CHECK(rc == Z_STREAM_END, where, ": the compressed text is corrupt (zlib: ", zlib_message, "); ",
           kBrokenAdvice);
  return out;
}

/// The keyword (Latin-1 bytes before the first NUL) of a tEXt/zTXt/iTXt chunk.
std::string raw_keyword(const Chunk& c) {
  const auto* nul = static_cast<const uint8_t*>(std::memchr(c.data, 0, c.length));
  return std::string(reinterpret_cast<const char*>(c.data), nul ? nul - c.data : c.length);
}

bool is_text_chunk(const Chunk& c) { return c.type == "tEXt" || c.type == "zTXt" || c.type == "iTXt"; }

/// key -> UTF-8 value of one text chunk.
std::pair<std::string, std::string> decode_text_chunk(const Chunk& c, const std::string& name) {
  const std::string where = str_cat(name, ": ", c.type, " chunk at byte ", c.offset);
  const std::string key = raw_keyword(c);
  const std::string key_utf8 = latin1_to_utf8(reinterpret_cast<const uint8_t*>(key.data()), key.size());
  const uint8_t* rest = c.data + std::min<size_t>(key.size() + 1, c.length);
  size_t rest_size = c.data + c.length - rest;
  if (c.type == "tEXt") return {key_utf8, latin1_to_utf8(rest, rest_size)};
  if (c.type == "zTXt") {
    LS_CHECK(rest_size >= 1 && rest[0] == 0, where, ": unknown compression method; ", kBrokenAdvice);
    std::string text = inflate_text(rest + 1, rest_size - 1, where);
    return {key_utf8, latin1_to_utf8(reinterpret_cast<const uint8_t*>(text.data()), text.size())};
  }
  // iTXt: flag, method, language NUL, translated keyword NUL, text.
  LS_CHECK(rest_size >= 2, where, ": too short for an iTXt chunk; ", kBrokenAdvice);
  const bool compressed = rest[0] != 0;
  LS_CHECK(!compressed || rest[1] == 0, where, ": unknown compression method; ", kBrokenAdvice);
  const uint8_t* p = rest + 2;
  const uint8_t* end = rest + rest_size;
  for (int field = 0; field < 2; ++field) {  // language tag, translated keyword
    const auto* nul = static_cast<const uint8_t*>(std::memchr(p, 0, end - p));
    LS_CHECK(nul != nullptr, where, ": iTXt header fields are not NUL-terminated; ", kBrokenAdvice);
    p = nul + 1;
  }
  std::string text = compressed ? inflate_text(p, end - p, where)
                                : std::string(reinterpret_cast<const char*>(p), end - p);
  LS_CHECK(core::is_valid_utf8(text), where, ": iTXt text is not valid UTF-8; ", kBrokenAdvice);
  return {key_utf8, std::move(text)};
}

void append_chunk(std::vector<uint8_t>& out, const char* type, const std::string& data) {
  LS_CHECK(data.size() <= kMaxChunkLength, "PNG text: a value of ", data.size(), " bytes is too large for a chunk");
  append_be32(out, static_cast<uint32_t>(data.size()));
  const size_t crc_from = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  append_be32(out, chunk_crc(&out[crc_from], 4 + data.size()));
}

/// The keyword as Latin-1, checked against the PNG rules (§11.3.3.2).
std::string png_keyword(const std::string& key) {
  std::string latin1;
  LS_CHECK(core::is_valid_utf8(key) && utf8_to_latin1(key, latin1), "PNG text key '", key,
           "': only Latin-1 characters are allowed in PNG keywords; use a plain ASCII key");
  LS_CHECK(!latin1.empty() && latin1.size() <= 79, "PNG text key '", key, "': must be 1 to 79 characters, got ",
           latin1.size());
  for (size_t i = 0; i < latin1.size(); ++i) {
    const auto b = static_cast<uint8_t>(latin1[i]);
    LS_CHECK((b >= 32 && b <= 126) || b >= 161, "PNG text key '", key,
             "': contains a control or non-printable character; use printable characters");
    LS_CHECK(b != ' ' || (i > 0 && i + 1 < latin1.size() && latin1[i - 1] != ' '), "PNG text key '", key,
             "': leading, trailing or repeated spaces are not allowed in PNG keywords");
  }
  return latin1;
}

}  // namespace png_text_detail

std::vector<uint8_t> png_with_text(std::vector<uint8_t> png, const PngTextEntries& entries) {
  using namespace png_text_detail;
  const std::string name = "PNG data";
  const std::vector<Chunk> chunks = walk_chunks(png, name);
  std::set<std::string> keys;
  std::vector<uint8_t> new_chunks;
  for (const auto& [key, value] : entries) {
    const std::string keyword = png_keyword(key);
    LS_CHECK(keys.insert(keyword).second, "PNG text key '", key, "' is given twice; give each key once");
    LS_CHECK(core::is_valid_utf8(value), "PNG text '", key, "': the value is not valid UTF-8");
    LS_CHECK(value.find('\0') == std::string::npos, "PNG text '", key,
             "': the value contains a NUL character, which PNG text cannot hold");
    std::string latin1;
    if (utf8_to_latin1(value, latin1)) {
      append_chunk(new_chunks, "tEXt", keyword + '\0' + latin1);
    } else {
      // Uncompressed, no language tag, no translated keyword: PIL's add_itxt(zip=False).
      append_chunk(new_chunks, "iTXt", keyword + std::string(5, '\0') + value);
    }
  }
  const auto first_idat = std::find_if(chunks.begin(), chunks.end(), [](const Chunk& c) { return c.type == "IDAT"; });
  LS_CHECK(first_idat != chunks.end(), name, ": no IDAT chunk (no image data); ", kBrokenAdvice);
  std::vector<uint8_t> out(kSignature.begin(), kSignature.end());
  out.reserve(png.size() + new_chunks.size());
  for (auto it = chunks.begin(); it != chunks.end(); ++it) {
    if (it == first_idat) out.insert(out.end(), new_chunks.begin(), new_chunks.end());
    if (is_text_chunk(*it) && keys.count(raw_keyword(*it))) continue;
    out.insert(out.end(), png.begin() + it->offset, png.begin() + it->offset + it->total_size());
  }
  return out;
}

std::map<std::string, std::string> read_png_text(const std::vector<uint8_t>& png, const std::string& name_for_errors) {
  using namespace png_text_detail;
  std::map<std::string, std::string> texts;
  for (const Chunk& c : walk_chunks(png, name_for_errors)) {
    if (!is_text_chunk(c)) continue;
    auto [key, value] = decode_text_chunk(c, name_for_errors);
    texts[key] = std::move(value);
  }
  return texts;
}

}  // namespace ls::io
