// io/image_header: inputs fuzz/fuzz_image_header found (tests/fixtures/fuzz/fuzz_image_header), each
// now answered as the walker promises — a header without a problem gives a size (only a JPEG DNL
// leaves it unknown), and the size-only walk agrees with the complete one.
#include "io/image_header.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "support/support.h"

namespace image_header_test {

using ls::io::ImageFormat;
using ls::io::parse_image_header;
using testing::HasSubstr;

std::vector<uint8_t> fuzz_input(const std::string& name) {
  const std::string bytes =
      ls::core::read_file(std::string(ls::test::kSourceDir) + "/tests/fixtures/fuzz/fuzz_image_header/" + name);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

void le32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}

// crash-7fda...: "RIFF", "WEBP", then a VP8L chunk that claims 0x6180001E bytes of which one is
// there: its 5-byte header (signature + 28 bits of size) is unreadable, so there is no size; the
// size-only walk used to answer "no problem, 0x0".
TEST(ImageHeaderFuzz, CutVp8lChunkWithoutItsHeaderIsAProblem) {
  const auto bytes = fuzz_input("crash-7fda4689f09e00cbc4cbf90844f4a11956caeb0e");
  const auto quick = parse_image_header(bytes.data(), bytes.size(), false);
  EXPECT_EQ(quick.format, ImageFormat::kWebp);
  EXPECT_EQ(quick.problem, "ends inside the VP8L chunk");
  EXPECT_EQ(quick.width, 0);
  EXPECT_EQ(parse_image_header(bytes.data(), bytes.size(), true).problem,
            "RIFF header says 50 bytes, the data has 21");
}

// A cut VP8L chunk whose header is there still answers the size (a truncated download is sized
// from its header, and the decode reports the cut).
TEST(ImageHeaderFuzz, CutVp8lChunkWithItsHeaderGivesTheSize) {
  std::string webp = "RIFF";
  le32(webp, 4 + 8 + 100);
  webp += "WEBPVP8L";
  le32(webp, 100);
  const uint32_t bits = (37 - 1) | (21 - 1) << 14;  // 37 x 21
  webp.push_back('\x2f');
  le32(webp, bits);
  const auto* p = reinterpret_cast<const uint8_t*>(webp.data());
  const auto quick = parse_image_header(p, webp.size(), false);
  EXPECT_EQ(quick.problem, "");
  EXPECT_EQ(quick.width, 37);
  EXPECT_EQ(quick.height, 21);
  EXPECT_THAT(parse_image_header(p, webp.size(), true).problem, HasSubstr("RIFF header says"));
}

// An animation frame without the VP8X canvas header has no size to give.
TEST(ImageHeaderFuzz, AnimationFrameWithoutVp8xIsAProblem) {
  std::string webp = "RIFF";
  le32(webp, 4 + 8 + 16);
  webp += "WEBPANMF";
  le32(webp, 16);
  webp += std::string(16, '\0');
  const auto h = parse_image_header(reinterpret_cast<const uint8_t*>(webp.data()), webp.size(), true);
  EXPECT_THAT(h.problem, HasSubstr("ANMF (animation) chunk without a VP8X header"));
}

}  // namespace image_header_test
