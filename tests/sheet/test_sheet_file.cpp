// sheet.json: what the runner's writer produces, the review's validating reader gives back, field
// for field (one module owns both sides).
#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "sheet/sheet_file.h"
#include "support/support.h"

namespace {

using ls::sheet::Sheet;
using ls::sheet::SheetAxis;
using ls::sheet::SheetCell;

Sheet example_sheet() {
  Sheet s;
  s.title = "strengths — ünïcode";
  // x carries facets (a sweep's varied values, keys in name order as JSON objects keep them).
  s.axes = {SheetAxis{"x", "strength", "LoRA strength", {"0.5", "1"},
                      {{{"learning_rate", "1e-4"}, {"network_dim", "8"}}, {{"learning_rate", "5e-5"}, {"network_dim", "8"}}}},
            SheetAxis{"page", "seed", "Seed", {"1", "2"}, {}}};
  s.figures = {{"training loss, all runs", "loss.png"}};
  s.grids = {"grid-000.png", "grid-001.png"};
  s.page_labels = {"Seed: 1", "Seed: 2"};
  for (int page = 0; page < 2; ++page) {
    for (int x = 0; x < 2; ++x) {
      SheetCell c;
      c.id = std::string("00000000000000") + char('a' + page) + char('0' + x);
      c.coords = {{"x", x}, {"page", page}};
      c.image = "cells/" + c.id + ".png";
      c.width = 64, c.height = 32;
      c.params = {{"seed", page + 1}, {"loras", {{{"name", "a"}, {"strength", x ? 1.0 : 0.5}, {"epoch", 3 + x}}}}};
      c.infotext = "a prompt\nSteps: 20, Seed: " + std::to_string(page + 1);
      s.cells.push_back(c);
    }
  }
  return s;
}

TEST(SheetFile, WhatTheWriterWritesTheReaderReadsBack) {
  const Sheet written = example_sheet();
  ls::test::TempDir dir;
  ls::sheet::write_sheet(dir / "sheet.json", written);
  const Sheet read = ls::sheet::load_sheet(dir / "sheet.json");
  EXPECT_EQ(read.title, written.title);
  ASSERT_EQ(read.axes.size(), written.axes.size());
  for (size_t i = 0; i < read.axes.size(); ++i) {
    EXPECT_EQ(read.axes[i].role, written.axes[i].role);
    EXPECT_EQ(read.axes[i].kind, written.axes[i].kind);
    EXPECT_EQ(read.axes[i].title, written.axes[i].title);
    EXPECT_EQ(read.axes[i].values, written.axes[i].values);
    EXPECT_EQ(read.axes[i].facets, written.axes[i].facets);
  }
  ASSERT_EQ(read.figures.size(), 1u);
  EXPECT_EQ(read.figures[0].title, "training loss, all runs");
  EXPECT_EQ(read.figures[0].image, "loss.png");
  EXPECT_EQ(read.grids, written.grids);
  EXPECT_EQ(read.page_labels, written.page_labels);
  ASSERT_EQ(read.cells.size(), written.cells.size());
  for (size_t i = 0; i < read.cells.size(); ++i) {
    const SheetCell &a = read.cells[i], &b = written.cells[i];
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.coords, b.coords);
    EXPECT_EQ(a.image, b.image);
    EXPECT_EQ(a.width, b.width);
    EXPECT_EQ(a.height, b.height);
    EXPECT_EQ(a.params, b.params);
    EXPECT_EQ(a.infotext, b.infotext);
    EXPECT_EQ(a.epochs, std::vector<int>{3 + static_cast<int>(i % 2)});  // from params.loras[].epoch
  }
  // The document the reader keeps is the one written, and writing what was read gives the same bytes.
  EXPECT_EQ(read.doc, ls::sheet::sheet_document(written));
  ls::sheet::write_sheet(dir / "again.json", read);
  EXPECT_EQ(ls::core::read_file(dir / "again.json"), ls::core::read_file(dir / "sheet.json"));
}

TEST(SheetFile, FacetsAndFiguresAreChecked) {
  nlohmann::json doc = ls::sheet::sheet_document(example_sheet());
  const auto error = [](const nlohmann::json& d) {
    return ls::test::error_of([&] { ls::sheet::parse_sheet(d, "sheet.json"); });
  };
  nlohmann::json bad = doc;
  bad["axes"][0]["facets"].erase(1);
  EXPECT_NE(error(bad).find("axes[0].facets has 1 entries for 2 values"), std::string::npos) << error(bad);
  bad = doc;
  bad["axes"][0]["facets"][0]["network_dim"] = 8;
  EXPECT_NE(error(bad).find("facets[0].network_dim must be a string"), std::string::npos) << error(bad);
  bad = doc;
  bad["figures"][0]["image"] = "../loss.png";
  EXPECT_NE(error(bad).find("figures[0].image '../loss.png' is not a plain relative path"), std::string::npos) << error(bad);
}

}  // namespace
