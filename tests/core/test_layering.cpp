// The folder dependency rule of STYLE.md: a src/ folder includes only folders earlier in
// core, io, text, nn, models, lora, data, sample, train, sheet, caption, cli (and itself).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

#include "support/support.h"

namespace {

namespace fs = std::filesystem;

TEST(Layering, FoldersIncludeOnlyEarlierFolders) {
  const std::vector<std::string> order = {"core",  "io",    "text",  "nn",    "models",  "lora",
                                          "data",  "sample", "train", "sheet", "caption", "cli"};
  auto rank = [&](const std::string& f) {
    return static_cast<int>(std::find(order.begin(), order.end(), f) - order.begin());
  };
  const std::regex include(R"(^\s*#\s*include\s*"([a-z_]+)/)");
  int files = 0;
  const fs::path src = fs::path(ls::test::kSourceDir) / "src";
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    if (!e.is_regular_file()) continue;
    const std::string folder = fs::relative(e.path(), src).begin()->string();  // src/sheet/web/x -> sheet
    ASSERT_LT(rank(folder), static_cast<int>(order.size())) << "src/" << folder << " is not in the layer list";
    std::ifstream in(e.path());
    std::string line;
    int line_no = 0;
    ++files;
    while (std::getline(in, line)) {
      ++line_no;
      std::smatch m;
      if (!std::regex_search(line, m, include)) continue;
      EXPECT_LE(rank(m[1]), rank(folder)) << e.path().string() << ":" << line_no << " includes " << m[1]
                                          << "/, a later folder";
    }
  }
  EXPECT_GT(files, 50);
}

}  // namespace
