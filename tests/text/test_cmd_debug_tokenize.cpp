// `lorastudio debug tokenize` run as a process: ids per input line equal the fixture's, and bad
// paths end in one error line with a non-zero exit code. Needs the lorastudio target built.
#include <fstream>

#include <nlohmann/json.hpp>

#include "support/support.h"

namespace {

std::string quote(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

TEST(GoldenDebugTokenize, WritesOneIdArrayPerLine) {
  std::ifstream cases_in(std::string(ls::test::kFixturesDir) + "/tokenizer_cases.json");
  auto cases = nlohmann::json::parse(cases_in).at("cases");
  ls::test::TempDir dir;
  std::vector<std::vector<int64_t>> expected;
  {
    std::ofstream input(dir / "prompts.txt", std::ios::binary);
    for (const auto& c : cases) {
      auto text = c.at("text").get<std::string>();
      if (text.find('\n') != std::string::npos || text.find('\r') != std::string::npos) continue;
      input << text << "\n";
      expected.push_back(c.at("ids").get<std::vector<int64_t>>());
    }
    input << "\n";  // an empty line: start + end
    expected.push_back({49406, 49407});
  }
  ASSERT_GT(expected.size(), 150u);
  auto r = ls::test::run_lorastudio("debug tokenize --vocab " + quote(ls::test::kClipVocab) + " --input " +
                                    quote(dir / "prompts.txt") + " --output " + quote(dir / "ids.json"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream out(dir / "ids.json");
  auto ids = nlohmann::json::parse(out).get<std::vector<std::vector<int64_t>>>();
  EXPECT_EQ(ids, expected);
}

TEST(DebugTokenize, BadPathsGiveOneErrorLine) {
  ls::test::TempDir dir;
  std::ofstream(dir / "in.txt") << "a cat\n";
  auto r = ls::test::run_lorastudio("debug tokenize --vocab " + quote(dir / "missing.txt.gz") + " --input " +
                                    quote(dir / "in.txt") + " --output " + quote(dir / "o.json"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("missing.txt.gz: no such file"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;

  r = ls::test::run_lorastudio("debug tokenize --vocab " + quote(ls::test::kClipVocab) + " --input " +
                               quote(dir / "absent.txt") + " --output " + quote(dir / "o.json"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("absent.txt: cannot open"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "o.json"));
}

}  // namespace
