// libFuzzer target for PNG text chunks (io/png_text_chunks.cpp): the strict chunk walker
// (signature, IHDR first, lengths, CRC-32, IEND), tEXt/zTXt (Latin-1, zlib) and iTXt (UTF-8,
// compressed or not, language tag and translated keyword), and re-tagging before the first IDAT.
// Beyond "parse or ls::Error":
//  - every key and value read is valid UTF-8;
//  - re-tagging a PNG that reads (png_with_text with "parameters" = a UTF-8 text made from the
//    input, which is a tEXt when Latin-1 fits and an iTXt otherwise, plus every read key that is a
//    valid PNG keyword, rewritten with its own value) gives a PNG that reads back as the old texts
//    with those entries laid over them — or, only for a PNG without IDAT, the one refusal for that;
//  - re-tagging the result with the same entries changes no byte.
// CRCs are checked by the reader, so the fuzzer's mutations mostly die there: an input whose CRCs
// are wrong is checked again with every complete chunk's CRC recomputed, so the text layouts
// behind the walker are reached too (fuzz-share 2). Built and run by scripts/fuzz (zlib only: no
// OpenCV, no torch).
// fuzz-what: PNG text chunks (tEXt, zTXt, iTXt; re-tagging)
// fuzz-sources: src/io/png_text_chunks.cpp src/core/utf8.cpp
// fuzz-libs: -lz
// fuzz-max-len: 8192
// fuzz-share: 2
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/utf8.h"
#include "io/png_text_chunks.h"

namespace {

using Texts = std::map<std::string, std::string>;

uint32_t pt_be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }

// Rewrites every complete chunk's CRC so that mutations inside chunk data get past the check.
void pt_fix_crcs(std::vector<uint8_t>& png) {
  size_t pos = 8;
  while (pos + 12 <= png.size()) {
    const uint64_t length = pt_be32(&png[pos]);
    if (length > png.size() - pos - 12) return;
    const uint32_t crc = static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), &png[pos + 4], static_cast<uInt>(length + 4)));
    for (int i = 0; i < 4; ++i) png[pos + 8 + length + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
    pos += 12 + length;
  }
}

// A valid UTF-8 text without NUL made from the input's last bytes (invalid bytes become '?').
std::string pt_value_from(const std::vector<uint8_t>& png) {
  const size_t n = std::min<size_t>(png.size(), 48);
  std::string raw(png.end() - static_cast<std::ptrdiff_t>(n), png.end());
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    size_t len = 1;
    while (len <= 4 && i + len <= raw.size() && !ls::core::is_valid_utf8(std::string_view(raw).substr(i, len))) ++len;
    if (len <= 4 && i + len <= raw.size() && raw[i] != '\0') {
      out.append(raw, i, len);
      i += len - 1;
    } else {
      out.push_back('?');
    }
  }
  return out;
}

// png_keyword's rules, asked of the writer itself: only a refused key names "PNG text key".
bool pt_is_keyword(const std::vector<uint8_t>& png, const std::string& key) {
  try {
    ls::io::png_with_text(png, {{key, ""}});
  } catch (const ls::Error& e) {
    return std::string(e.what()).rfind("PNG text key", 0) != 0;
  }
  return true;
}

void pt_check(const std::vector<uint8_t>& png) {
  Texts texts;
  try {
    texts = ls::io::read_png_text(png, "fuzz.png");
  } catch (const ls::Error&) {
    return;
  }
  for (const auto& [key, value] : texts)
    if (!ls::core::is_valid_utf8(key) || !ls::core::is_valid_utf8(value)) __builtin_trap();

  ls::io::PngTextEntries entries = {{"parameters", pt_value_from(png)}};
  for (const auto& [key, value] : texts)
    if (key != "parameters" && value.find('\0') == std::string::npos && pt_is_keyword(png, key))
      entries.emplace_back(key, value);
  std::vector<uint8_t> tagged;
  try {
    tagged = ls::io::png_with_text(png, entries);
  } catch (const ls::Error& e) {
    if (std::string(e.what()).find("no IDAT chunk") == std::string::npos) __builtin_trap();
    return;
  }
  Texts expected = texts;
  for (const auto& [key, value] : entries) expected[key] = value;
  // Not caught: a PNG lorastudio wrote that it cannot read back is a writer/reader disagreement.
  if (ls::io::read_png_text(tagged, "tagged.png") != expected) __builtin_trap();
  if (ls::io::png_with_text(tagged, entries) != tagged) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> png(data, data + size);
  pt_check(png);
  std::vector<uint8_t> fixed = png;
  pt_fix_crcs(fixed);
  if (fixed != png) pt_check(fixed);
  return 0;
}
