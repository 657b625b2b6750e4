// core/key_table: values read the same from TOML and from text, every field type survives
// key_value -> read_value and toml_text -> TOML -> read_value, kohya off values, aliases, the
// outcomes of apply, and the errors' wording.
#include <toml++/toml.h>

#include "core/error.h"
#include "core/key_table.h"
#include "core/toml_value.h"
#include "support/support.h"

namespace {

using namespace ls::core;
using ls::test::error_of;

struct Settings {
  std::string name = "a";
  int count = 1;
  int64_t big = 2;
  std::optional<int> every;
  double rate = 0.5;
  std::optional<double> lr;
  bool flag = false;
  std::vector<std::string> args;
  std::array<int, 2> size{512, 512};
  std::optional<uint64_t> seed;
};

Settings everything_set() {
  Settings s;
  s.name = "with \"quotes\", commas\nand a newline";
  s.count = -7;
  s.big = 9'000'000'000;
  s.every = 3;
  s.rate = 0.1 + 0.2;
  s.lr = 1e-5;
  s.flag = true;
  s.args = {"a=1", "b=two words"};
  s.size = {832, 1216};
  s.seed = 18446744073709551614ull;
  return s;
}

const KeyTable<Settings>& table() {
  static const KeyTable<Settings> t({
      field_key("name", &Settings::name, "a name"),      field_key("count", &Settings::count, "a count"),
      field_key("big", &Settings::big, "a 64-bit count"), field_key("every", &Settings::every, "optional"),
      field_key("rate", &Settings::rate, "a rate"),       field_key("lr", &Settings::lr, "optional rate"),
      field_key("flag", &Settings::flag, "a switch"),     field_key("args", &Settings::args, "a list"),
      field_key("size", &Settings::size, "a size"),       field_key("seed", &Settings::seed, "a seed"),
      ignored_key<Settings>("xformers", "attention is chosen here"),
      refused_key<Settings>("loss_type", OffValue::Kind::kText, "l2"),
      refused_key<Settings>("v2", OffValue::Kind::kFalse),
  });
  return t;
}

TEST(KeyTable, EveryTypeSurvivesBothRoundTrips) {
  const Settings s = everything_set();
  Settings through_values, through_toml;
  std::string toml;
  for (const auto& k : table().keys()) {
    if (!k.taken()) continue;
    k.set(through_values, k.value(s), k.name);
    toml += k.name + " = " + k.text(s) + "\n";
  }
  const toml::table root = toml::parse(toml);
  for (const auto& k : table().keys())
    if (k.taken()) k.set(through_toml, toml_value(*root.get(k.name)), k.name);
  for (const Settings* r : {&through_values, &through_toml}) {
    EXPECT_EQ(r->name, s.name);
    EXPECT_EQ(r->count, s.count);
    EXPECT_EQ(r->big, s.big);
    EXPECT_EQ(r->every, s.every);
    EXPECT_EQ(r->rate, s.rate);  // exact: the shortest text that reads back
    EXPECT_EQ(r->lr, s.lr);
    EXPECT_EQ(r->flag, s.flag);
    EXPECT_EQ(r->args, s.args);
    EXPECT_EQ(r->size, s.size);
    EXPECT_EQ(r->seed, s.seed);  // above 2^63: a string in TOML
  }
  Settings reset = s;
  for (const auto& k : table().keys())
    if (k.taken()) k.reset(reset);
  for (const auto& k : table().keys()) {
    if (k.taken()) {
      EXPECT_EQ(k.text(reset), k.text(Settings{})) << k.name;
    }
  }
}

TEST(KeyTable, TextIsParsedAndTypedValuesMustHaveTheirType) {
  Settings s;
  const auto& t = table();
  EXPECT_EQ(t.apply(s, "count", text_value(" 12 "), "--count", nullptr), Applied::kSet);
  EXPECT_EQ(s.count, 12);
  t.apply(s, "flag", text_value("TRUE"), "--flag", nullptr);
  EXPECT_TRUE(s.flag);
  t.apply(s, "size", text_value("640,768"), "--size", nullptr);
  EXPECT_EQ(s.size, (std::array<int, 2>{640, 768}));
  t.apply(s, "args", text_value("a=1 b=2"), "--args", nullptr);
  EXPECT_EQ(s.args, std::vector<std::string>{"a=1 b=2"});  // one entry: the parsers split it
  const toml::table root = toml::parse("count = \"12\"\nrate = true\nflag = \"false\"\nsize = [64]\nbig = 1.5\n");
  EXPECT_EQ(error_of([&] { t.apply(s, "count", toml_value(*root.get("count")), "f:1: 'count'", nullptr); }),
            "f:1: 'count' must be an integer, got \"12\"");
  EXPECT_NE(error_of([&] { t.apply(s, "rate", toml_value(*root.get("rate")), "r", nullptr); }).find("must be a number"),
            std::string::npos);
  EXPECT_NE(error_of([&] { t.apply(s, "flag", toml_value(*root.get("flag")), "f", nullptr); }).find("true or false"),
            std::string::npos);
  EXPECT_NE(error_of([&] { t.apply(s, "size", toml_value(*root.get("size")), "s", nullptr); }).find("[W, H]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { t.apply(s, "big", toml_value(*root.get("big")), "b", nullptr); }).find("an integer"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { t.apply(s, "count", text_value("3000000000"), "--count", nullptr); }),
            "--count must be a 32-bit integer, got '3000000000'");
  EXPECT_NE(error_of([&] { t.apply(s, "rate", text_value("inf"), "--rate", nullptr); }).find("a finite number"),
            std::string::npos);
}

TEST(KeyTable, KohyaKeysIgnoredOrTakenOnlyWhenOff) {
  Settings s;
  const auto& t = table();
  std::vector<std::string> notes;
  EXPECT_EQ(t.apply(s, "xformers", text_value("true"), "--xformers", &notes), Applied::kIgnored);
  EXPECT_EQ(notes, std::vector<std::string>{"xformers: ignored (attention is chosen here)"});
  EXPECT_EQ(t.apply(s, "loss_type", text_value("l2"), "x", nullptr), Applied::kOff);
  EXPECT_EQ(t.apply(s, "loss_type", text_value("huber"), "x", nullptr), Applied::kRefused);
  EXPECT_EQ(t.apply(s, "v2", text_value("False"), "x", nullptr), Applied::kOff);
  EXPECT_EQ(t.apply(s, "v2", text_value(""), "x", nullptr), Applied::kOff);  // GUIs write None as ""
  const toml::table root = toml::parse("a = \"false\"\nb = false\n");
  EXPECT_EQ(t.apply(s, "v2", toml_value(*root.get("a")), "x", nullptr), Applied::kRefused);  // a truthy string in TOML
  EXPECT_EQ(t.apply(s, "v2", toml_value(*root.get("b")), "x", nullptr), Applied::kOff);
  EXPECT_EQ(t.apply(s, "nope", text_value("1"), "x", nullptr), Applied::kUnknown);
  EXPECT_EQ(t.did_you_mean("cuont"), " (did you mean 'count'?)");
  EXPECT_EQ(t.did_you_mean("xformer"), "");  // only taken keys are suggested
  EXPECT_EQ(off_hint(OffValue{OffValue::Kind::kText, "l2"}), " (or set it to \"l2\")");
}

TEST(KeyTable, AliasesPartsAndRanges) {
  struct Outer {
    Settings inner;
    int other = 0;
  };
  Key<Settings> count = within(field_key("count", &Settings::count, "a count"), 1, 10);
  count.aliases = {"n"};
  const KeyTable<Outer> t({part_key(count, &Outer::inner), field_key("other", &Outer::other, "x")});
  Outer o;
  t.apply(o, "n", text_value("4"), "--n", nullptr);
  EXPECT_EQ(o.inner.count, 4);
  EXPECT_EQ(t.find("count"), t.find("n"));
  EXPECT_EQ(error_of([&] { t.apply(o, "count", text_value("11"), "--count", nullptr); }),
            "--count must be in [1, 10], got '11'");
  EXPECT_EQ(t.find("count")->text(o), "4");  // a refused value leaves the field as it was
}

}  // namespace
