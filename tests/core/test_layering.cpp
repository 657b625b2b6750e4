// The folder dependency rule of STYLE.md: a src/ folder includes only folders earlier in core, io,
// text, nn, models, lora, dist, data, sample, a1111, train, sheet, sweep, review, caption, cli (and itself); and
// inside folders no include cycle between files (x.h and x.cpp count as one unit, "folder/x").
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>

#include "support/support.h"

namespace {

namespace fs = std::filesystem;

TEST(Layering, FoldersIncludeOnlyEarlierFolders) {
  // STYLE.md's order, with a1111 (A1111 interop: infotext, file hashes) after sample and review
  // (the review server and page over a sheet folder) after sheet and sweep (many trainings and
  // their sheet), and dist (the data-parallel process group) before data and train, its users.
  const std::vector<std::string> order = {"core",   "io",    "text",  "nn",    "models", "lora",   "dist",    "data",
                                          "sample", "a1111", "train", "sheet", "sweep",  "review", "caption", "cli"};
  auto rank = [&](const std::string& f) {
    return static_cast<int>(std::find(order.begin(), order.end(), f) - order.begin());
  };
  const std::regex include(R"(^\s*#\s*include\s*"([a-z_]+)/)");
  int files = 0;
  const fs::path src = fs::path(ls::test::kSourceDir) / "src";
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    if (!e.is_regular_file()) continue;
    const std::string folder = fs::relative(e.path(), src).begin()->string();  // src/review/web/x -> sheet
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

// Units are files without their extension; a unit depends on every unit its .h or .cpp includes.
TEST(Layering, NoIncludeCycleBetweenFiles) {
  const fs::path src = fs::path(ls::test::kSourceDir) / "src";
  const std::regex include(R"(^\s*#\s*include\s*"([a-z_]+/[A-Za-z0-9_/]+)\.h")");
  std::map<std::string, std::set<std::string>> deps;
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    const auto ext = e.path().extension();
    if (!e.is_regular_file() || (ext != ".h" && ext != ".cpp")) continue;
    const std::string unit = fs::relative(e.path(), src).replace_extension().string();
    auto& out = deps[unit];
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (std::regex_search(line, m, include) && m[1] != unit) out.insert(m[1]);
    }
  }
  ASSERT_GT(deps.size(), 50u);
  // Depth-first search; a unit met again while on the stack closes a cycle, printed in order.
  std::map<std::string, int> state;  // 0 new, 1 on the stack, 2 done
  std::vector<std::string> stack;
  std::vector<std::string> cycles;
  std::function<void(const std::string&)> visit = [&](const std::string& u) {
    state[u] = 1;
    stack.push_back(u);
    for (const auto& v : deps[u]) {
      if (state[v] == 1) {
        std::string cycle;
        for (auto it = std::find(stack.begin(), stack.end(), v); it != stack.end(); ++it) cycle += *it + " -> ";
        cycles.push_back(cycle + v);
      } else if (state[v] == 0) {
        visit(v);
      }
    }
    stack.pop_back();
    state[u] = 2;
  };
  for (const auto& [u, unused] : deps)
    if (state[u] == 0) visit(u);
  for (const auto& c : cycles) ADD_FAILURE() << "include cycle: " << c;
}

}  // namespace
