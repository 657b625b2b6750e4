// data/captions: kohya's process_caption (forced outcomes worked out by hand, the draw order
// checked draw for draw, statistics of shuffle and tag dropout) and read_caption.
#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "data/captions.h"
#include "support/support.h"

namespace {

using ls::data::CaptionOptions;
using ls::data::process_caption;

std::string run(const std::string& caption, const CaptionOptions& o, int epoch = 1, uint64_t seed = 0) {
  ls::core::Rng rng(seed);
  return process_caption(caption, o, epoch, rng);
}

// How many 64-bit draws process_caption consumed (compared against a fresh generator).
int draws_used(const std::string& caption, const CaptionOptions& o, int epoch, uint64_t seed = 5) {
  ls::core::Rng rng(seed);
  process_caption(caption, o, epoch, rng);
  const uint64_t next = rng.next();
  ls::core::Rng ref(seed);
  for (int n = 0; n < 64; ++n) {
    if (ref.next() == next) return n;
  }
  return -1;
}

std::vector<std::string> split_tags(const std::string& s) {  // on ", " (what kohya joins with)
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t pos; (pos = s.find(", ", start)) != std::string::npos; start = pos + 2) {
    out.push_back(s.substr(start, pos - start));
  }
  out.push_back(s.substr(start));
  return out;
}

TEST(Captions, PassesThroughWithoutShuffleOrDropout) {
  CaptionOptions o;
  o.keep_tokens = 2;  // kohya only splits when tags move or drop: keep_tokens alone does nothing
  EXPECT_EQ(run("a,  b,,c ", o), "a,  b,,c ");
  EXPECT_EQ(run("first line, x\nsecond line", o), "first line, x");  // first line only
  EXPECT_EQ(draws_used("a, b", o, 1), 0);
}

TEST(Captions, PrefixAndSuffixJoinWithASpace) {
  CaptionOptions o;
  o.caption_prefix = "ohwx";
  o.caption_suffix = "masterpiece";
  EXPECT_EQ(run("1girl, solo", o), "ohwx 1girl, solo masterpiece");
  o.caption_suffix.clear();
  EXPECT_EQ(run("", o), "ohwx ");  // "ohwx" + " " + "": kohya keeps the trailing space
  // With shuffling the prefix becomes part of the first tag: "ohwx 1girl" stays fixed.
  o.keep_tokens = 1;
  o.caption_tag_dropout_rate = 1.0;
  EXPECT_EQ(run("1girl, solo, smile", o), "ohwx 1girl");
}

TEST(Captions, WholeCaptionDropout) {
  CaptionOptions o;
  o.caption_dropout_rate = 1.0;  // uniform() < 1 always
  EXPECT_EQ(run("a, b", o), "");
  EXPECT_EQ(draws_used("a, b", o, 1), 1);
  o.caption_prefix = "ohwx";  // the prefix goes too
  EXPECT_EQ(run("a, b", o), "");

  CaptionOptions every;
  every.caption_dropout_every_n_epochs = 2;  // dropped when current_epoch % 2 == 0
  EXPECT_EQ(run("a, b", every, 0), "");      // kohya's epoch 0 is the caching pass
  EXPECT_EQ(run("a, b", every, 1), "a, b");  // first training epoch
  EXPECT_EQ(run("a, b", every, 2), "");
  EXPECT_EQ(run("a, b", every, 3), "a, b");
  EXPECT_EQ(run("a, b", every, 4), "");
  EXPECT_EQ(draws_used("a, b", every, 2), 0);
  every.caption_dropout_rate = 0.5;  // the rate is drawn first, whatever the epoch rule says
  EXPECT_EQ(draws_used("a, b", every, 2), 1);
}

TEST(Captions, KeepTokensWithForcedTagDropout) {
  CaptionOptions o;
  o.keep_tokens = 1;
  o.caption_tag_dropout_rate = 1.0;  // uniform() >= 1 never: every flexible tag goes
  EXPECT_EQ(run("ohwx, a, b, c", o), "ohwx");
  EXPECT_EQ(draws_used("ohwx, a, b, c", o, 1), 3);  // one per flexible tag
  // keep_tokens covering everything: no flexible tags, tags re-joined with ", " after strip.
  o.keep_tokens = 3;
  EXPECT_EQ(run(" a,b ,  c ", o), "a, b, c");
  EXPECT_EQ(draws_used(" a,b ,  c ", o, 1), 0);
  // Empty tags survive this branch: "a,,b" -> "a", "", "b".
  EXPECT_EQ(run("a,,b", o), "a, , b");
  // Another separator; the join is still ", ".
  o.caption_separator = "|";
  EXPECT_EQ(run("a|b|c", o), "a, b, c");
  o.keep_tokens = 1;
  EXPECT_EQ(run("a|b|c", o), "a");
}

TEST(Captions, KeepTokensSeparatorFixesPrefixAndSuffix) {
  CaptionOptions o;
  o.keep_tokens_separator = "|||";
  o.keep_tokens = 5;  // ignored when the separator is in the caption
  o.caption_tag_dropout_rate = 1.0;
  EXPECT_EQ(run("ohwx, 1girl ||| red, blue, green ||| masterpiece, best", o), "ohwx, 1girl, masterpiece, best");
  EXPECT_EQ(run("a, b ||| c, d", o), "a, b");  // one separator: no suffix part
  EXPECT_EQ(run("a ||| b, c", o), "a");
  // Not in the caption: kohya falls back to keep_tokens.
  o.keep_tokens = 1;
  EXPECT_EQ(run("ohwx, a, b", o), "ohwx");
  // Empty tags are dropped in the separator branch.
  o.caption_tag_dropout_rate = 0;
  o.shuffle_caption = true;
  EXPECT_EQ(run("a,, b ||| c", o), "a, b, c");
  // A third separator stays inside the suffix tag.
  EXPECT_EQ(run("a ||| b ||| c ||| d", o), "a, b, c ||| d");

  // Shuffle: fixed prefix and suffix stay, the middle is a permutation.
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const auto tags = split_tags(run("ohwx, 1girl ||| red, blue, green ||| masterpiece, best", o, 1, seed));
    ASSERT_EQ(tags.size(), 7u);
    EXPECT_EQ(tags[0], "ohwx");
    EXPECT_EQ(tags[1], "1girl");
    EXPECT_EQ(tags[5], "masterpiece");
    EXPECT_EQ(tags[6], "best");
    std::multiset<std::string> middle(tags.begin() + 2, tags.begin() + 5);
    EXPECT_EQ(middle, (std::multiset<std::string>{"red", "blue", "green"}));
  }
}

TEST(Captions, SecondarySeparatorBecomesTheCaptionSeparator) {
  CaptionOptions o;
  o.secondary_separator = ";;;";
  EXPECT_EQ(run("a;;;b, c", o), "a,b, c");  // replaced by caption_separator, not by ", "
  // While shuffling, "p;;;q" moves as one tag and is only split afterwards.
  o.shuffle_caption = true;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const std::string out = run("p;;;q, r, s", o, 1, seed);
    EXPECT_NE(out.find("p,q"), std::string::npos) << out;
    EXPECT_EQ(out.size(), std::string("p,q, r, s").size());
  }
}

TEST(Captions, StripsPythonWhitespaceIncludingUnicodeSpaces) {
  CaptionOptions o;
  o.keep_tokens = 2;
  o.shuffle_caption = true;
  // U+3000 ideographic space and U+00A0 no-break space are str.isspace() in Python.
  EXPECT_EQ(run("\u3000a\u3000,\u00a0b\t", o), "a, b");
}

TEST(Captions, ShuffleIsAPermutationReachingEveryPosition) {
  CaptionOptions o;
  o.shuffle_caption = true;
  o.keep_tokens = 1;
  const std::vector<std::string> flex = {"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"};
  std::string caption = "ohwx";
  for (const auto& t : flex) caption += ", " + t;
  std::map<std::string, std::set<size_t>> positions;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const auto tags = split_tags(run(caption, o, 1, seed));
    ASSERT_EQ(tags.size(), 9u);
    EXPECT_EQ(tags[0], "ohwx");
    std::vector<std::string> rest(tags.begin() + 1, tags.end());
    std::sort(rest.begin(), rest.end());
    EXPECT_EQ(rest, flex);
    for (size_t i = 1; i < tags.size(); ++i) positions[tags[i]].insert(i);
  }
  for (const auto& t : flex) EXPECT_EQ(positions[t].size(), 8u) << t;
}

TEST(Captions, TagDropoutRateHalfKeepsHalf) {
  CaptionOptions o;
  o.caption_tag_dropout_rate = 0.5;
  o.keep_tokens = 1;
  const std::string caption = "ohwx, a, b, c, d, e, f, g, h, i, j";  // 10 flexible tags
  int kept = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {  // 2,000 draws
    const std::string out = run(caption, o, 1, seed);
    EXPECT_EQ(out.rfind("ohwx", 0), 0u);
    kept += static_cast<int>(split_tags(out).size()) - 1;
  }
  EXPECT_NEAR(kept / 2000.0, 0.5, 0.03);  // binomial sd 1.1%
}

TEST(Captions, DrawOrderMatchesKohya) {
  // kohya: random() for the caption dropout, then random.shuffle(flex), then random() per tag.
  CaptionOptions o;
  o.caption_dropout_rate = 0.3;
  o.shuffle_caption = true;
  o.caption_tag_dropout_rate = 0.4;
  o.keep_tokens = 1;
  const std::vector<std::string> flex = {"a", "b", "c", "d", "e", "f"};
  int dropped = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    ls::core::Rng ref(seed);
    std::string expected;
    if (ref.uniform() < 0.3) {
      ++dropped;
    } else {
      std::vector<std::string> tags = flex;
      ref.shuffle(tags);
      expected = "ohwx";
      for (const auto& t : tags) {
        if (ref.uniform() >= 0.4) expected += ", " + t;
      }
    }
    ls::core::Rng rng(seed);
    EXPECT_EQ(process_caption("ohwx, a, b, c, d, e, f", o, 1, rng), expected) << seed;
    EXPECT_EQ(rng.next(), ref.next()) << seed;
  }
  EXPECT_GT(dropped, 15);  // both branches were exercised
  EXPECT_LT(dropped, 50);
}

TEST(Captions, SameSeedSameOutputDifferentSeedsDiffer) {
  CaptionOptions o;
  o.shuffle_caption = true;
  const std::string caption = "t0, t1, t2, t3, t4, t5, t6, t7, t8, t9";
  std::set<std::string> outputs;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    EXPECT_EQ(run(caption, o, 1, seed), run(caption, o, 1, seed));
    outputs.insert(run(caption, o, 1, seed));
  }
  EXPECT_EQ(outputs.size(), 20u);  // 10! orders: 20 seeds give 20 different captions
}

TEST(Captions, StaticOnlyWithoutShuffleOrDropout) {
  CaptionOptions o;
  o.keep_tokens = 3;
  o.caption_prefix = "ohwx";
  o.secondary_separator = ";";
  EXPECT_TRUE(ls::data::caption_is_static(o));
  auto changed = [&](auto f) {
    CaptionOptions c = o;
    f(c);
    return ls::data::caption_is_static(c);
  };
  EXPECT_FALSE(changed([](CaptionOptions& c) { c.shuffle_caption = true; }));
  EXPECT_FALSE(changed([](CaptionOptions& c) { c.caption_dropout_rate = 0.1; }));
  EXPECT_FALSE(changed([](CaptionOptions& c) { c.caption_tag_dropout_rate = 0.1; }));
  EXPECT_FALSE(changed([](CaptionOptions& c) { c.caption_dropout_every_n_epochs = 3; }));
}

TEST(Captions, InvalidOptionsNameTheOption) {
  auto error_of = [](auto f) -> std::string {
    CaptionOptions o;
    f(o);
    try {
      run("a, b", o);
    } catch (const ls::Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of([](CaptionOptions& o) { o.caption_separator = ""; }).find("caption_separator"), std::string::npos);
  EXPECT_NE(error_of([](CaptionOptions& o) { o.caption_dropout_rate = 1.5; }).find("caption_dropout_rate"),
            std::string::npos);
  EXPECT_NE(error_of([](CaptionOptions& o) { o.caption_tag_dropout_rate = -0.1; }).find("caption_tag_dropout_rate"),
            std::string::npos);
  EXPECT_NE(error_of([](CaptionOptions& o) { o.keep_tokens = -1; }).find("keep_tokens"), std::string::npos);
  EXPECT_NE(error_of([](CaptionOptions& o) { o.caption_dropout_every_n_epochs = -2; })
                .find("caption_dropout_every_n_epochs"),
            std::string::npos);
}

class CaptionFiles : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& bytes) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path.string();
  }
  ls::test::TempDir dir_;
};

TEST_F(CaptionFiles, MissingEmptyAndBlank) {
  auto f = ls::data::read_caption_file((dir_ / "none.txt").string());
  EXPECT_FALSE(f.exists);
  std::filesystem::create_directory(dir_ / "dir.txt");  // kohya's os.path.isfile skips folders
  EXPECT_FALSE(ls::data::read_caption_file((dir_ / "dir.txt").string()).exists);
  for (const std::string& bytes : {std::string(), std::string("\n"), std::string(" \t\r\n"),
                                   std::string("   \nsecond line")}) {
    f = ls::data::read_caption_file(write("blank.txt", bytes));
    EXPECT_TRUE(f.exists);
    EXPECT_TRUE(f.empty) << bytes;
    EXPECT_EQ(f.text, "");
  }
}

TEST_F(CaptionFiles, FirstLineStripped) {
  const std::map<std::string, std::string> cases = {
      {"  ohwx, 1girl  \nsecond\n", "ohwx, 1girl"},
      {"a, b\r\nc\r\n", "a, b"},              // CRLF
      {"a\rb", "a"},                          // lone CR ends a line in Python text mode
      {"no newline", "no newline"},
      {"\xEF\xBB\xBFohwx, 1girl\n", "ohwx, 1girl"},  // BOM dropped (kohya would keep U+FEFF)
      {"\u3000ohwx\u3000\n", "ohwx"},         // ideographic spaces are whitespace to str.strip
      {"caf\u00e9, \u65e5\u672c\n", "caf\u00e9, \u65e5\u672c"},
  };
  for (const auto& [bytes, text] : cases) {
    const auto f = ls::data::read_caption_file(write("c.txt", bytes));
    EXPECT_TRUE(f.exists);
    EXPECT_FALSE(f.empty);
    EXPECT_EQ(f.text, text);
  }
}

TEST_F(CaptionFiles, InvalidUtf8AnywhereIsAnError) {
  // kohya decodes the whole file, so a bad byte on line 2 fails too.
  for (const std::string& bytes : {std::string("ok\n\xff\xfe"), std::string("\xED\xA0\x80"),  // surrogate
                                   std::string("a\xC0\x80")}) {                                // overlong
    const std::string path = write("bad.txt", bytes);
    try {
      ls::data::read_caption_file(path);
      ADD_FAILURE() << "no error for " << bytes;
    } catch (const ls::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find("UTF-8"), std::string::npos) << msg;
    }
  }
  try {
    ls::data::read_caption_file(write("bad2.txt", "ok\n\xff"));
  } catch (const ls::Error& e) {
    EXPECT_NE(std::string(e.what()).find("offset 3"), std::string::npos) << e.what();
  }
}

}  // namespace
