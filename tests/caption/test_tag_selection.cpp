// Tag selection against kohya's own script (tests/fixtures/tagger/selection/cases.json, made by
// make_selection_fixture.py: kohya-ss/sd-scripts tag_images_by_wd14_tagger.py run on fixed
// probabilities, MCut per SmilingWolf's Space), lorastudio's own prefix and max_tags, the option
// parsers, and selected_tags.csv reading with its errors. Captions are compared exactly.
#include <cmath>
#include <filesystem>
#include <limits>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "caption/selected_tags.h"
#include "caption/tag_selection.h"
#include "core/atomic_file.h"
#include "core/key_table.h"
#include "support/support.h"

namespace tag_selection_test {

namespace fs = std::filesystem;
using ls::caption::Selection;
using ls::caption::SelectionOptions;
using ls::caption::SelectedTags;
using ls::caption::TagFrequency;
using ls::caption::TagSelector;
using ls::test::error_of;

fs::path tagger_fixture(const std::string& name) {
  return fs::path(ls::test::kSourceDir) / "tests/fixtures/tagger" / name;
}

SelectedTags fixture_tags() { return ls::caption::read_selected_tags((tagger_fixture("vit") / "selected_tags.csv").string()); }

SelectedTags tags_from(const std::string& csv) { return ls::caption::parse_selected_tags(csv, "test.csv"); }

// Options from kohya-named text values, through the same table the command's flags use.
SelectionOptions options_from(const nlohmann::json& values) {
  SelectionOptions o;
  for (const auto& [key, value] : values.items()) {
    const auto applied = ls::caption::selection_keys().apply(o, key, ls::core::text_value(value.get<std::string>()),
                                                             "--" + key, nullptr);
    EXPECT_EQ(applied, ls::core::Applied::kSet) << key;
  }
  return o;
}

SelectionOptions options_of(std::initializer_list<std::pair<const char*, const char*>> values) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : values) j[k] = v;
  return options_from(j);
}

const nlohmann::json& cases() {
  static const nlohmann::json j =
      nlohmann::json::parse(ls::core::read_file(tagger_fixture("selection") / "cases.json"));
  return j;
}

std::vector<float> probabilities_of(const std::string& image) {
  for (const auto& im : cases()["images"])
    if (im["name"] == image) {
      std::vector<float> p;
      for (const auto& v : im["probabilities"]) p.push_back(static_cast<float>(v.get<double>()));  // exact: float32 values
      return p;
    }
  ADD_FAILURE() << "no image " << image;
  return {};
}

std::vector<std::string> names_of(const Selection& s) {
  std::vector<std::string> out;
  for (const auto& t : s.tags) out.push_back(t.name);
  return out;
}

// ---------------------------------------------------------------- against kohya

TEST(TagSelection, EqualsKohyaOnTheFixture) {
  const nlohmann::json& doc = cases();
  const SelectedTags tags = fixture_tags();
  ASSERT_GE(doc["cases"].size(), 20u);
  ASSERT_EQ(doc["images"].size(), 6u);
  for (const auto& c : doc["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const TagSelector selector(tags, options_from(c["options"]));
    TagFrequency frequency;
    ASSERT_EQ(c["captions"].size(), doc["images"].size());
    for (size_t i = 0; i < doc["images"].size(); ++i) {
      const std::string image = doc["images"][i]["name"];
      const Selection s = selector.select(probabilities_of(image));
      EXPECT_EQ(s.caption, c["captions"][i].get<std::string>()) << "image " << image;
      frequency.add(s);
    }
    std::vector<std::pair<std::string, int64_t>> expected;
    for (const auto& f : c["frequency"]) expected.emplace_back(f[0].get<std::string>(), f[1].get<int64_t>());
    EXPECT_EQ(frequency.sorted(), expected);
  }
}

// ---------------------------------------------------------------- lorastudio's own rules and defaults

TEST(TagSelection, DefaultsAreTheIssuesAndThreshFallsBackLikeKohya) {
  SelectionOptions o;
  EXPECT_EQ(ls::caption::effective_general_threshold(o), 0.35);
  EXPECT_EQ(ls::caption::effective_character_threshold(o), 0.85);
  EXPECT_EQ(o.caption_separator, ", ");
  o.thresh = 0.5;
  EXPECT_EQ(ls::caption::effective_general_threshold(o), 0.5);
  EXPECT_EQ(ls::caption::effective_character_threshold(o), 0.5);
  o.character_threshold = 0.9;
  EXPECT_EQ(ls::caption::effective_character_threshold(o), 0.9);
}

TEST(TagSelection, PrefixComesFirstAndMaxTagsCountsOnlyTags) {
  const SelectedTags tags = fixture_tags();
  const std::vector<float> p = probabilities_of("portrait");
  const TagSelector selector(tags, options_of({{"prefix", "ohwx"}, {"max_tags", "3"}, {"use_rating_tags", "true"},
                                                 {"always_first_tags", "hat"}}));
  const Selection s = selector.select(p);
  // kohya's order is "hat, sensitive, 1girl, solo, ..."; max_tags cuts after that order.
  EXPECT_EQ(s.caption, "ohwx, hat, sensitive, 1girl");
  EXPECT_EQ(names_of(s), (std::vector<std::string>{"hat", "sensitive", "1girl"}));
  TagFrequency f;
  f.add(s);
  f.add(s);
  // Counted in kohya's order (model order, the rating last), the prefix never.
  EXPECT_EQ(f.sorted(), (std::vector<std::pair<std::string, int64_t>>{{"1girl", 2}, {"hat", 2}, {"sensitive", 2}}));
  // A prefix alone when nothing passes.
  const TagSelector none(tags, options_of({{"prefix", "ohwx"}, {"thresh", "2"}}));
  EXPECT_EQ(none.select(p).caption, "ohwx");
  EXPECT_EQ(TagSelector(tags, options_of({{"thresh", "2"}})).select(p).caption, "");
}

TEST(TagSelection, SelectedTagsCarryIndexProbabilityAndCategory) {
  const SelectedTags tags = fixture_tags();
  const std::vector<float> p = probabilities_of("portrait");
  const Selection s = TagSelector(tags, options_of({{"remove_underscore", "true"}})).select(p);
  ASSERT_GE(s.tags.size(), 3u);
  EXPECT_EQ(s.tags[2].name, "long hair");
  EXPECT_EQ(s.tags[2].index, 6);
  EXPECT_EQ(s.tags[2].category, ls::caption::kGeneralCategory);
  EXPECT_EQ(s.tags[2].probability, p[6]);
}

TEST(TagSelection, UnderscoreRuleCountsCharactersNotBytes) {
  const SelectedTags tags = tags_from(
      "tag_id,name,category,count\n1,general,9,1\n2,(o)_(o),0,1\n3,^_^,0,1\n4,\xC3\xA9_\xC3\xA9,0,1\n5,a_b_c,0,1\n");
  const TagSelector selector(tags, options_of({{"remove_underscore", "true"}}));
  // kohya keeps underscores in names of at most 3 characters, whatever they are; "é_é" is 3.
  EXPECT_EQ(selector.select({0.f, 1.f, 1.f, 1.f, 1.f}).caption, "(o) (o), ^_^, \xC3\xA9_\xC3\xA9, a b c");
}

TEST(TagSelection, CharacterExpansionEdgeForms) {
  const SelectedTags tags = tags_from(
      "name,category\nr,9\nx_(costume)_(series),4\nplain,4\nodd),4\n");
  const TagSelector selector(tags, options_of({{"character_tag_expand", "true"}, {"caption_separator", " / "},
                                                 {"character_threshold", "0"}}));
  EXPECT_EQ(selector.output_name(1), "x_(costume) / series");
  EXPECT_EQ(selector.output_name(2), "plain");
  EXPECT_EQ(selector.output_name(3), " / odd");  // no '(': kohya's split leaves an empty name
}

TEST(TagSelection, OtherCategoriesNeverReachACaption) {
  const SelectedTags tags = tags_from("name,category\ng,9\na,0\nartist_x,1\nseries_y,3\nhighres,5\nc,4\n");
  EXPECT_EQ(tags.other, (std::vector<int64_t>{2, 3, 4}));
  const TagSelector selector(tags, options_of({{"thresh", "0"}}));
  EXPECT_EQ(selector.select({1, 1, 1, 1, 1, 1}).caption, "a, c");
}

TEST(TagSelection, ReplacementChainsAndPrefersGeneralThenCharacterThenRating) {
  const SelectedTags tags = tags_from("name,category\ndup,9\nx,9\ndup,4\ndup,0\na,0\nb,0\n");
  const TagSelector selector(tags, options_of({{"tag_replacement", "dup,one;dup,two;dup,three;a,b;b,c"}}));
  EXPECT_EQ(selector.output_name(3), "one");    // general first
  EXPECT_EQ(selector.output_name(2), "two");    // then character
  EXPECT_EQ(selector.output_name(0), "three");  // then rating
  EXPECT_EQ(selector.output_name(4), "c");      // a -> b, then the first b (this one) -> c
  EXPECT_EQ(selector.output_name(5), "b");
}

// ---------------------------------------------------------------- MCut

TEST(TagSelection, McutIsTheMidpointOfTheFirstWidestGap) {
  EXPECT_EQ(ls::caption::mcut_threshold({0.1, 0.9, 0.2, 0.8}), 0.5);
  // equal widest gaps: the first from the top (numpy's argmax)
  EXPECT_EQ(ls::caption::mcut_threshold({0.75, 0.5, 0.25}), 0.625);
  EXPECT_EQ(ls::caption::mcut_threshold({0.4, 0.4}), 0.4);
  EXPECT_FALSE(ls::caption::mcut_threshold({0.4}).has_value());
  EXPECT_FALSE(ls::caption::mcut_threshold({}).has_value());
}

TEST(TagSelection, McutKeepsStrictlyAboveAndFloorsCharacters) {
  const SelectedTags tags = tags_from("name,category\nr,9\na,0\nb,0\nc,4\nd,4\nlone,4\n");
  // Equal general probabilities: the cut is the value itself and nothing is strictly above it.
  const TagSelector general(tags, options_of({{"general_mcut", "true"}}));
  EXPECT_EQ(general.select({0, 0.5f, 0.5f, 0, 0, 0}).caption, "");
  // Characters 0.14 and 0.02 (and 0): the cut 0.08 is raised to 0.15.
  const TagSelector character(tags, options_of({{"character_mcut", "true"}}));
  EXPECT_EQ(character.select({0, 0, 0, 0.14f, 0.02f, 0}).caption, "");
  EXPECT_EQ(character.select({0, 0, 0, 0.16f, 0.02f, 0}).caption, "c");
  // One character tag: no gap, the fixed threshold (0.85) applies.
  const SelectedTags one = tags_from("name,category\nr,9\nc,4\n");
  const TagSelector single(one, options_of({{"character_mcut", "true"}}));
  EXPECT_EQ(single.select({0, 0.9f}).caption, "c");
  EXPECT_EQ(single.select({0, 0.8f}).caption, "");
}

// ---------------------------------------------------------------- option values

TEST(TagSelection, TagReplacementParsing) {
  const auto r = ls::caption::parse_tag_replacement("a\\,b,A\\,B;c\\;d,C\\;D;x\\y,z");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].source, "a,b");
  EXPECT_EQ(r[0].target, "A,B");
  EXPECT_EQ(r[1].source, "c;d");
  EXPECT_EQ(r[1].target, "C;D");
  EXPECT_EQ(r[2].source, "x\\y");  // a backslash before anything else is itself
  EXPECT_TRUE(ls::caption::parse_tag_replacement("").empty());
  EXPECT_EQ(error_of([] { ls::caption::parse_tag_replacement("a,b;c"); }),
            "tag_replacement: pair 2 'c' must be source,target with one comma (write a comma inside a tag as \\, and "
            "a semicolon as \\;)");
  EXPECT_NE(error_of([] { ls::caption::parse_tag_replacement("a,b;"); }).find("pair 2 ''"), std::string::npos);
  EXPECT_NE(error_of([] { ls::caption::parse_tag_replacement("a,b,c"); }).find("pair 1 'a,b,c'"), std::string::npos);
  EXPECT_EQ(error_of([] { ls::caption::parse_tag_replacement("hat,"); }),
            "tag_replacement: pair 1 'hat,' has an empty side (to drop a tag, use undesired_tags)");
}

TEST(TagSelection, TagListsSplitAtTheSeparatorWithoutItsBlanks) {
  using ls::caption::split_tag_list;
  EXPECT_EQ(split_tag_list("a, b ,,c", ", ", true), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split_tag_list("a, b ,,c", ", ", false), (std::vector<std::string>{"a", " b ", "c"}));
  EXPECT_EQ(split_tag_list("a | b", " | ", true), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(split_tag_list("", " ", true).empty());
  EXPECT_EQ(error_of([] { split_tag_list("a b", " ", true); }),
            "caption_separator ' ' is only blanks, and undesired_tags/always_first_tags are split at it without them: "
            "use a visible separator");
}

TEST(TagSelection, MalformedOptionsAreOneLineErrors) {
  const SelectedTags tags = fixture_tags();
  EXPECT_EQ(error_of([&] { TagSelector s(tags, options_of({{"caption_separator", ""}})); }),
            "caption_separator: empty; kohya's default is \", \"");
  EXPECT_NE(error_of([&] { TagSelector s(tags, options_of({{"tag_replacement", "a"}})); }).find("tag_replacement: pair 1"),
            std::string::npos);
  SelectionOptions o;
  EXPECT_NE(error_of([&] {
              ls::caption::selection_keys().apply(o, "max_tags", ls::core::text_value("-1"), "--max_tags", nullptr);
            }).find("--max_tags"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              ls::caption::selection_keys().apply(o, "thresh", ls::core::text_value("high"), "--thresh", nullptr);
            }).find("--thresh"),
            std::string::npos);
  o.general_threshold = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(error_of([&] { TagSelector s(tags, o); }), "general_threshold must be a finite number, got nan");
}

TEST(TagSelection, RejectsWrongCountAndNaN) {
  const TagSelector selector(fixture_tags(), SelectionOptions{});
  EXPECT_EQ(error_of([&] { selector.select(std::vector<float>(23, 0.f)); }),
            "tag probabilities: 23 values for 24 tags (the model and its selected_tags.csv disagree)");
  std::vector<float> p(24, 0.f);
  p[5] = std::nanf("");
  EXPECT_EQ(error_of([&] { selector.select(p); }), "tag probabilities: NaN for 'solo' (index 5)");
}

// ---------------------------------------------------------------- selected_tags.csv

TEST(SelectedTags, ReadsTheFixtureList) {
  const SelectedTags tags = fixture_tags();
  ASSERT_EQ(tags.size(), 24);
  EXPECT_EQ(tags.rating, (std::vector<int64_t>{0, 1, 2, 3}));
  ASSERT_EQ(tags.general.size(), 16u);
  EXPECT_EQ(tags.general.front(), 4);
  EXPECT_EQ(tags.character, (std::vector<int64_t>{20, 21, 22, 23}));
  EXPECT_TRUE(tags.other.empty());
  EXPECT_EQ(tags.names[8], "^_^");
  EXPECT_EQ(tags.names[22], "kirisame_marisa_(cosplay)");
  EXPECT_EQ(tags.names[23], "\"quoted\", name");
  EXPECT_EQ(tags.tag_ids[0], 1000);
  EXPECT_EQ(tags.categories[23], ls::caption::kCharacterCategory);
  // The folder works as well as the file.
  EXPECT_EQ(ls::caption::read_selected_tags(tagger_fixture("vit").string()).names, tags.names);
}

TEST(SelectedTags, ReadsQuotingLineEndsAndColumnsInAnyOrder) {
  const SelectedTags tags = tags_from(
      "\xEF\xBB\xBF" "category,name\r\n9,\"a\"\"b\"\r\n\r\n0,\"two\nlines\"\r4,plain\"quote\n"
      "0,\"x,y\"");
  ASSERT_EQ(tags.size(), 4);
  EXPECT_EQ(tags.names, (std::vector<std::string>{"a\"b", "two\nlines", "plain\"quote", "x,y"}));
  EXPECT_EQ(tags.tag_ids, (std::vector<int64_t>{-1, -1, -1, -1}));
  EXPECT_EQ(tags.character, (std::vector<int64_t>{2}));
}

TEST(SelectedTags, ErrorsNameTheFileAndLine) {
  EXPECT_EQ(error_of([] { tags_from("tag_id,name,count\n1,a,5\n"); }),
            "test.csv line 1: no 'category' column in the header 'tag_id,name,count' (expected tag_id,name,category,count)");
  EXPECT_EQ(error_of([] { tags_from("tag_id,name,category,count\n1,a,0,5\n2,b,c,0,5\n"); }),
            "test.csv line 3: 5 fields, the header has 4 (a name holding a comma must be quoted)");
  EXPECT_EQ(error_of([] { tags_from("tag_id,name,category,count\n1,a,zero,5\n"); }),
            "test.csv line 2: category 'zero' is not a whole number");
  EXPECT_EQ(error_of([] { tags_from("tag_id,name,category,count\nx1,a,0,5\n"); }),
            "test.csv line 2: tag_id 'x1' is not a whole number");
  EXPECT_EQ(error_of([] { tags_from("tag_id,name,category,count\n1,a,0,5\n2,\"b,0,5\n3,c,0,5\n"); }),
            "test.csv line 3: unterminated quote (a field opened with \" is never closed)");
  EXPECT_EQ(error_of([] { tags_from("tag_id,name,category,count\n1,\"a\"b,0,5\n"); }),
            "test.csv line 2: text after a closing quote (a quote inside a quoted field is written \"\")");
  EXPECT_EQ(error_of([] { tags_from("tag_id,name,category,count\n1,,0,5\n"); }), "test.csv line 2: empty tag name");
  EXPECT_EQ(error_of([] { tags_from("\n\n"); }), "test.csv: empty file; expected the header tag_id,name,category,count");
  EXPECT_EQ(error_of([] { tags_from("tag_id,name,category,count\n"); }), "test.csv: a header but no tags");
  EXPECT_EQ(error_of([] { tags_from("tag_id,name,category,count\n1,a,0,5\n2,\xFF,0,5\n"); }),
            "test.csv line 3: not UTF-8 text");
  ls::test::TempDir dir;
  EXPECT_EQ(error_of([&] { ls::caption::read_selected_tags(dir.path().string()); }),
            (dir.path() / "selected_tags.csv").string() +
                ": no such file (a WD14 tagger folder holds selected_tags.csv next to model.safetensors)");
}

}  // namespace tag_selection_test
