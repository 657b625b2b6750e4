// io/image over the damaged-image corpus (tests/support/image_corpus.h): every file is either an
// image of the size its header declares or one ls::Error line naming the file — never a crash, an
// abort, another exception type (cv::Exception, std::bad_alloc) or a hang; truncations, PNG byte
// flips, non-images and bombs are always refused, bombs before any decoder allocates (the refusal
// comes from io/image_guard). The bytes API, the path API, check_image and the size-only path
// must agree with each other on every file.
#include <filesystem>
#include <functional>
#include <map>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "core/error.h"
#include "io/image.h"
#include "io/image_guard.h"
#include "support/image_corpus.h"
#include "support/support.h"

namespace image_corpus_test {

namespace fs = std::filesystem;
using ls::test::CorpusEntry;
using Expect = CorpusEntry::Expect;

// What one call did: an image (its size), an ls::Error (its message), or anything else (a bug).
struct Outcome {
  bool ok = false;
  int width = 0, height = 0;
  std::string error;  // ls::Error message when !ok
  std::string other;  // any other exception: never allowed
};

Outcome outcome_of(const std::function<ls::io::ImageSize()>& f) {
  Outcome o;
  try {
    const ls::io::ImageSize s = f();
    o.ok = true;
    o.width = s.width;
    o.height = s.height;
  } catch (const ls::Error& e) {
    o.error = e.what();
  } catch (const std::exception& e) {
    o.other = std::string("std::exception: ") + e.what();
  } catch (...) {
    o.other = "an exception that is not a std::exception";
  }
  return o;
}

// The contract for one call on one entry; `label` is the name the call was given.
void expect_contract(const CorpusEntry& e, const Outcome& o, const std::string& label, const char* api) {
  SCOPED_TRACE(std::string(api) + " on " + e.name);
  ASSERT_TRUE(o.other.empty()) << o.other;
  if (!o.ok) {
    EXPECT_NE(o.error.find(label), std::string::npos) << "the error does not name the file: " << o.error;
    EXPECT_EQ(o.error.find('\n'), std::string::npos) << "more than one line: " << o.error;
  }
  if (e.expect == Expect::kImage) {
    ASSERT_TRUE(o.ok) << o.error;
    EXPECT_EQ(o.width, e.width);
    EXPECT_EQ(o.height, e.height);
  } else if (e.expect == Expect::kRefused) {
    ASSERT_FALSE(o.ok) << "accepted as " << o.width << "x" << o.height;
    EXPECT_NE(o.error.find(e.refusal), std::string::npos) << o.error;
  }
}

struct Tally {
  int accepted = 0, refused = 0;
};

TEST(ImageCorpus, EveryFileDecodesOrIsRefusedInOneLine) {
  const std::vector<CorpusEntry> corpus = ls::test::image_corpus();
  ls::test::TempDir dir;
  ls::test::write_corpus(dir.path(), corpus);
  std::map<std::string, Tally> tally;
  for (const CorpusEntry& e : corpus) {
    const std::string path = (dir / e.name).string();
    // From the bytes (the dataset scan's and the caption server's way) and from the path (training
    // batches, the captioner, masks), with the alpha channel as a masked-loss image asks for it.
    Outcome bytes;
    if (!e.folder) {
      bytes = outcome_of([&] {
        const ls::io::DecodedImage d = ls::io::decode_image(e.bytes, e.name, /*with_alpha=*/true);
        EXPECT_EQ(d.alpha.size(), d.rgb.size()) << e.name;
        return ls::io::ImageSize{d.rgb.cols, d.rgb.rows};
      });
      expect_contract(e, bytes, e.name, "decode_image");
    }
    const Outcome file = outcome_of([&] {
      const cv::Mat rgb = ls::io::read_image_rgb(path);
      return ls::io::ImageSize{rgb.cols, rgb.rows};
    });
    expect_contract(e, file, path, "read_image_rgb");
    if (!e.folder) {
      EXPECT_EQ(file.ok, bytes.ok) << e.name << ": the path and the bytes disagree: " << file.error << " / " << bytes.error;
      // check_image refuses a subset of what decode refuses, and agrees on the size of the rest.
      const Outcome checked = outcome_of([&] { return ls::io::check_image(e.bytes, e.name); });
      ASSERT_TRUE(checked.other.empty()) << e.name << ": " << checked.other;
      if (bytes.ok) {
        EXPECT_TRUE(checked.ok) << e.name << ": " << checked.error;
        EXPECT_EQ(checked.width, bytes.width) << e.name;
        EXPECT_EQ(checked.height, bytes.height) << e.name;
      }
    }
    // The size-only path answers from the header: the decoded size, or a one-line refusal.
    const Outcome size = outcome_of([&] { return ls::io::read_image_size(path); });
    ASSERT_TRUE(size.other.empty()) << e.name << ": " << size.other;
    if (file.ok) {
      EXPECT_TRUE(size.ok) << e.name << ": " << size.error;
      EXPECT_EQ(size.width, file.width) << e.name;
      EXPECT_EQ(size.height, file.height) << e.name;
    } else if (!size.ok) {
      EXPECT_NE(size.error.find(path), std::string::npos) << size.error;
    }
    (file.ok ? tally[e.kind].accepted : tally[e.kind].refused) += 1;
  }
  for (const auto& [kind, t] : tally)
    std::printf("[corpus] %-10s %3d files: %3d decoded, %3d refused\n", kind.c_str(), t.accepted + t.refused,
                t.accepted, t.refused);
  // Every category is present and the corpus is what the header describes.
  EXPECT_EQ(tally["truncated"].accepted, 0);
  EXPECT_EQ(tally["truncated"].refused, 14 * 15);
  EXPECT_EQ(tally["flipped"].accepted + tally["flipped"].refused, 14 * 6);
  EXPECT_EQ(tally["valid"].refused, 0);
  EXPECT_GE(tally["bomb"].refused, 11);
  EXPECT_EQ(tally["not_image"].accepted, 0);
}

// Bombs are refused from the header: the message is the guard's (no decoder ran, nothing was
// allocated), names the declared size and the limit, and the limit follows the environment.
TEST(ImageCorpus, PixelLimitIsPillowsAndOverridable) {
  EXPECT_EQ(ls::io::kDefaultMaxImagePixels, 2u * 89'478'485u);
  const std::vector<CorpusEntry> corpus = ls::test::image_corpus();
  auto entry = [&](const std::string& name) -> const CorpusEntry& {
    for (const CorpusEntry& e : corpus)
      if (e.name == name) return e;
    throw std::runtime_error("no corpus entry " + name);
  };
  const CorpusEntry& over = entry("bomb_png_13378x13377.png");
  const std::string message = ls::test::error_of([&] { ls::io::check_image(over.bytes, over.name); });
  EXPECT_NE(message.find("bomb_png_13378x13377.png: PNG header declares 13378x13377 = 178957506 pixels, over the "
                         "limit of 178956970"),
            std::string::npos)
      << message;
  // Raised past it, the same file is refused for the next reason: its data is far too small.
  ::setenv("LORASTUDIO_MAX_IMAGE_PIXELS", "200000000", 1);
  const std::string raised = ls::test::error_of([&] { ls::io::check_image(over.bytes, over.name); });
  // Lowered, a valid 48x32 image (1536 pixels) is over it.
  ::setenv("LORASTUDIO_MAX_IMAGE_PIXELS", "1000", 1);
  const CorpusEntry& small = entry("png_rgb.png");
  const std::string lowered = ls::test::error_of([&] { ls::io::decode_image_rgb(small.bytes, small.name); });
  ::setenv("LORASTUDIO_MAX_IMAGE_PIXELS", "lots", 1);
  const std::string bad = ls::test::error_of([&] { ls::io::decode_image_rgb(small.bytes, small.name); });
  ::unsetenv("LORASTUDIO_MAX_IMAGE_PIXELS");
  EXPECT_NE(raised.find("fewer than any encoder writes"), std::string::npos) << raised;
  EXPECT_NE(lowered.find("48x32 = 1536 pixels, over the limit of 1000"), std::string::npos) << lowered;
  EXPECT_NE(bad.find("LORASTUDIO_MAX_IMAGE_PIXELS='lots'"), std::string::npos) << bad;
  EXPECT_EQ(ls::io::decode_image_rgb(small.bytes, small.name).cols, 48);
}

}  // namespace image_corpus_test
