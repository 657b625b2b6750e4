// PNG text chunks in memory (tEXt, zTXt, iTXt; PNG spec 3rd ed. §11.3.3), where A1111 keeps the
// generation parameters under the key "parameters": a strict chunk walker, the three text layouts
// and insertion before the first IDAT. Writing follows PIL's PngInfo.add_text (python-pillow
// Pillow src/PIL/PngImagePlugin.py), which A1111 modules/images.py save_image uses: tEXt when the
// value is Latin-1 representable, else an uncompressed UTF-8 iTXt. Bytes only (zlib, no OpenCV),
// so the fuzz target needs nothing else; files and images are io/png_text.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ls::io {

using PngTextEntries = std::vector<std::pair<std::string, std::string>>;

/// The PNG with one text chunk per entry inserted just before the first IDAT, in the order given.
/// Keys and values are UTF-8. Existing tEXt/zTXt/iTXt chunks with the same keys are removed (so
/// re-tagging an image does not duplicate them). Keys: 1..79 Latin-1 bytes, printable, no
/// leading/trailing/double spaces (the PNG rule). Throws ls::Error for a broken PNG, a bad key or
/// a value that is not valid UTF-8.
std::vector<uint8_t> png_with_text(std::vector<uint8_t> png, const PngTextEntries& entries);

/// All text chunks of the PNG as key -> UTF-8 value (tEXt and zTXt are Latin-1 on disk; iTXt is
/// UTF-8, compressed or not); a key given twice keeps its last value, as PIL does. The whole
/// chunk structure is checked first: signature, IHDR first, chunk lengths within the file, every
/// CRC, IEND present; ls::Error "<name>: <what is wrong>; <what to do>" otherwise.
std::map<std::string, std::string> read_png_text(const std::vector<uint8_t>& png,
                                                 const std::string& name_for_errors);

}  // namespace ls::io
