// `lorastudio review`: sheet.json validation, selections.json round trip and atomic save, the
// pick summary (counts worked out by hand below), the server's routes over a real socket on
// 127.0.0.1 (picks land on disk; traversal, wrong Host, unknown cells refused) and the
// self-contained static page.
#include <filesystem>
#include <fstream>

#include <httplib.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/image.h"
#include "review/review_page.h"
#include "review/review_server.h"
#include "review/review_store.h"
#include "support/support.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ls::review::CellState;
using ls::test::error_of;

// 2 LoRA files (x) x 2 strengths (y) x 2 seeds (page) = 8 cells; id = "c" + 15 hex of x,y,page.
std::string review_cell_id(int x, int y, int page) { return "c00000000000" + std::to_string(x) + std::to_string(y) +
                                                     std::to_string(page) + "0"; }

json make_review_sheet_doc() {
  json cells = json::array();
  for (int page = 0; page < 2; ++page) {
    for (int y = 0; y < 2; ++y) {
      for (int x = 0; x < 2; ++x) {
        std::string id = review_cell_id(x, y, page);
        std::string lora = x == 0 ? "name-000001" : "name-000002";
        json params = {{"prompt", "a photo of sks"}, {"seed", page + 1}, {"steps", 20},
                       {"loras", {{{"name", lora}, {"strength", y == 0 ? 0.5 : 1.0}, {"epoch", x + 1}}}}};
        cells.push_back({{"id", id}, {"coords", {{"x", x}, {"y", y}, {"page", page}}},
                         {"image", "cells/" + id + ".png"}, {"width", 8}, {"height", 8},
                         {"params", params}, {"infotext", "a photo of sks\nSteps: 20"}});
      }
    }
  }
  return {{"format", "lorastudio-sheet"}, {"version", 1}, {"title", "test sheet"},
          {"axes", {{{"role", "x"}, {"kind", "lora"}, {"title", "LoRA file"}, {"values", {"name-000001", "name-000002"}}},
                    {{"role", "y"}, {"kind", "strength"}, {"title", "strength"}, {"values", {"0.5", "1"}}},
                    {{"role", "page"}, {"kind", "seed"}, {"title", "seed"}, {"values", {"1", "2"}}}}},
          {"pages", {{{"index", 0}, {"label", "seed: 1"}, {"grid", "grid-000.png"}},
                     {{"index", 1}, {"label", "seed: 2"}, {"grid", "grid-001.png"}}}},
          {"cells", cells}};
}

// A sheet folder on disk: sheet.json, one 8x8 PNG per cell (a distinct colour each), grids.
void write_review_sheet_folder(const fs::path& dir, const json& doc) {
  fs::create_directories(dir / "cells");
  ls::core::write_file_atomic(dir / "sheet.json", doc.dump(2));
  int i = 0;
  for (const auto& cell : doc["cells"]) {
    cv::Mat rgb(8, 8, CV_8UC3, cv::Scalar(30 * i, 255 - 30 * i, 100));
    ls::io::write_image((dir / cell["image"].get<std::string>()).string(), rgb);
    ++i;
  }
  for (const auto& page : doc["pages"]) {
    ls::io::write_image((dir / page["grid"].get<std::string>()).string(), cv::Mat(16, 16, CV_8UC3, cv::Scalar(255, 255, 255)));
  }
}

std::string review_sheet_error(const std::function<void(json&)>& edit) {
  json doc = make_review_sheet_doc();
  edit(doc);
  return error_of([&] { ls::review::parse_sheet(doc, "s/sheet.json"); });
}

TEST(ReviewStore, ParsesTheSheet) {
  auto sheet = ls::review::parse_sheet(make_review_sheet_doc(), "sheet.json");
  ASSERT_EQ(sheet.axes.size(), 3u);
  EXPECT_EQ(sheet.axes[0].kind, "lora");
  EXPECT_EQ(sheet.axes[2].values, (std::vector<std::string>{"1", "2"}));
  ASSERT_EQ(sheet.cells.size(), 8u);
  const auto* cell = sheet.find(review_cell_id(1, 0, 1));
  ASSERT_NE(cell, nullptr);
  EXPECT_EQ(cell->coords, (std::map<std::string, int>{{"x", 1}, {"y", 0}, {"page", 1}}));
  EXPECT_EQ(cell->epochs, std::vector<int>{2});
  EXPECT_EQ(sheet.grids, (std::vector<std::string>{"grid-000.png", "grid-001.png"}));
  EXPECT_EQ(sheet.find("0000000000000000"), nullptr);
}

TEST(ReviewStore, RefusesBrokenSheets) {
  EXPECT_NE(review_sheet_error([](json& d) { d["format"] = "other"; }).find("s/sheet.json: format is 'other'"), std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["version"] = 2; }).find("version 2 is not supported"), std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d.erase("cells"); }).find("s/sheet.json: cells is missing"), std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { std::swap(d["axes"][0], d["axes"][1]); }).find("axes[1].role 'x' is repeated or out of order"),
            std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["axes"][0]["role"] = "w"; }).find("axes[0].role 'w' is not one of x, y, z, page"),
            std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["axes"][1]["values"] = json::array(); }).find("axes[1].values is empty"),
            std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["cells"][3]["coords"]["y"] = 2; }).find("cells[3].coords.y = 2 is outside the 2 values"),
            std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["cells"][3]["coords"].erase("page"); }).find("cells[3].coords.page is missing"),
            std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["cells"][3]["coords"]["z"] = 0; }).find("cells[3].coords.z names no axis"),
            std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["cells"][2]["id"] = d["cells"][1]["id"]; }).find("appears twice"), std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["cells"][2]["coords"] = d["cells"][1]["coords"]; }).find("same coords"),
            std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["cells"][0]["id"] = "XYZ"; }).find("not 16 lowercase hex digits"), std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["cells"][0]["image"] = "../x.png"; }).find("cells[0].image '../x.png' is not a plain relative path"),
            std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["cells"][0]["params"]["loras"][0]["epoch"] = "1"; })
                .find("cells[0].params.loras[0].epoch must be an integer, got string"),
            std::string::npos);
  EXPECT_NE(review_sheet_error([](json& d) { d["pages"][1]["index"] = 5; }).find("pages[1].index is 5, expected 1"), std::string::npos);
  ls::test::TempDir dir;
  std::string missing = error_of([&] { ls::review::ReviewStore store(dir.path()); });
  EXPECT_NE(missing.find((dir.path() / "sheet.json").string() + ": not found"), std::string::npos) << missing;
  ls::core::write_file_atomic(dir / "sheet.json", "{\"format\": ");
  EXPECT_NE(error_of([&] { ls::review::ReviewStore store(dir.path()); }).find("sheet.json: not valid JSON"), std::string::npos);
}

TEST(ReviewStore, SafeRelativePaths) {
  for (const char* good : {"cells/0123456789abcdef.png", "grid-000.png", "a/b/c_d-e.png"}) {
    EXPECT_TRUE(ls::review::is_safe_relative_path(good)) << good;
  }
  for (const char* bad : {"", "/etc/passwd", "../sheet.json", "cells/../../x.png", "./a.png", "cells//a.png", "cells/",
                          "%2e%2e/x", "..%2fsheet.json", "cells\\..\\x.png", "C:/x.png", "a b.png", "a/./b.png"}) {
    EXPECT_FALSE(ls::review::is_safe_relative_path(bad)) << bad;
  }
}

TEST(ReviewStore, SelectionsRoundTripOnDisk) {
  ls::test::TempDir dir;
  write_review_sheet_folder(dir.path(), make_review_sheet_doc());
  {
    ls::review::ReviewStore store(dir.path());
    EXPECT_TRUE(store.selections().empty());  // no selections.json yet
    EXPECT_FALSE(fs::exists(dir / "selections.json"));
    store.set(review_cell_id(0, 0, 0), CellState::kPicked, "best hands");
    store.set(review_cell_id(1, 1, 0), CellState::kRejected, "");
    store.set(review_cell_id(1, 0, 1), CellState::kNone, "maybe");     // a note alone is kept
    store.set(review_cell_id(0, 1, 1), CellState::kPicked, "");
    store.set(review_cell_id(0, 1, 1), CellState::kNone, "");          // cleared: absent
  }
  json on_disk = json::parse(ls::core::read_file(dir / "selections.json"));
  json expected = {{"format", "lorastudio-selections"}, {"version", 1},
                   {"cells", {{review_cell_id(0, 0, 0), {{"state", "picked"}, {"note", "best hands"}}},
                              {review_cell_id(1, 1, 0), {{"state", "rejected"}}},
                              {review_cell_id(1, 0, 1), {{"state", "none"}, {"note", "maybe"}}}}}};
  EXPECT_EQ(on_disk, expected);
  ls::review::ReviewStore again(dir.path());
  ASSERT_EQ(again.selections().size(), 3u);
  EXPECT_EQ(again.selections().at(review_cell_id(0, 0, 0)).note, "best hands");
  EXPECT_EQ(again.selections().at(review_cell_id(1, 1, 0)).state, CellState::kRejected);
  EXPECT_EQ(ls::review::selections_to_json(again.selections()), expected);
  EXPECT_NE(error_of([&] { again.set("ffffffffffffffff", CellState::kPicked, ""); }).find("no cell with id 'ffffffffffffffff'"),
            std::string::npos);
}

TEST(ReviewStore, CorruptSelectionsSayFixOrDelete) {
  ls::test::TempDir dir;
  write_review_sheet_folder(dir.path(), make_review_sheet_doc());
  for (const char* text : {"{\"format\": \"lorastudio-selections\", ", "[1, 2]",
                           R"({"format": "lorastudio-selections", "version": 1, "cells": {"c000000000000000": {"state": "maybe"}}})"}) {
    ls::core::write_file_atomic(dir / "selections.json", text);
    std::string e = error_of([&] { ls::review::ReviewStore store(dir.path()); });
    EXPECT_NE(e.find((dir.path() / "selections.json").string()), std::string::npos) << e;
    EXPECT_NE(e.find("fix it or delete it"), std::string::npos) << e;
  }
}

TEST(ReviewStore, SaveIsAtomic) {
  ls::test::TempDir dir;
  write_review_sheet_folder(dir.path(), make_review_sheet_doc());
  ls::review::ReviewStore store(dir.path());
  store.set(review_cell_id(0, 0, 0), CellState::kPicked, "");
  std::string before = ls::core::read_file(dir / "selections.json");
  // A target that cannot be replaced (a non-empty folder): the rename fails, the memory state
  // stays as on disk and no temp file is left behind.
  fs::rename(dir / "selections.json", dir / "kept.json");
  fs::create_directories(dir / "selections.json" / "blocker");
  EXPECT_NE(error_of([&] { store.set(review_cell_id(1, 0, 0), CellState::kPicked, ""); }).find("cannot rename"), std::string::npos);
  EXPECT_EQ(store.selections().size(), 1u);
  EXPECT_EQ(store.selections().count(review_cell_id(1, 0, 0)), 0u);
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
  }
  EXPECT_EQ(ls::core::read_file(dir / "kept.json"), before);
}

// picked: (lora 1, 0.5, seed 1), (lora 2, 1, seed 1), (lora 2, 0.5, seed 2); rejected: (lora 1, 1, seed 2).
void make_four_choices(ls::review::ReviewStore& store) {
  store.set(review_cell_id(0, 0, 0), CellState::kPicked, "");
  store.set(review_cell_id(1, 1, 0), CellState::kPicked, "sharp");
  store.set(review_cell_id(1, 0, 1), CellState::kPicked, "");
  store.set(review_cell_id(0, 1, 1), CellState::kRejected, "");
}

json v(const char* value, int picked, int rejected) {  // one value of a summary group
  return json{{"value", value}, {"picked", picked}, {"rejected", rejected}};
}

TEST(ReviewStore, SummaryCountsPicksPerValue) {
  ls::test::TempDir dir;
  write_review_sheet_folder(dir.path(), make_review_sheet_doc());
  ls::review::ReviewStore store(dir.path());
  make_four_choices(store);
  json summary = ls::review::summary_to_json(store.summary());
  json expected = {{"picked", 3}, {"rejected", 1}, {"noted", 1},
                   {"groups", {{{"kind", "lora"}, {"title", "LoRA file"}, {"values", {v("name-000002", 2, 0), v("name-000001", 1, 1)}}},
                               {{"kind", "strength"}, {"title", "strength"}, {"values", {v("0.5", 2, 0), v("1", 1, 1)}}},
                               {{"kind", "epoch"}, {"title", "epoch"}, {"values", {v("2", 2, 0), v("1", 1, 1)}}},
                               {{"kind", "seed"}, {"title", "seed"}, {"values", {v("1", 2, 0), v("2", 1, 1)}}}}}};
  EXPECT_EQ(summary, expected) << summary.dump(1);
  // Equal picks: fewer rejections first, then axis order.
  store.set(review_cell_id(0, 1, 1), CellState::kPicked, "");
  store.set(review_cell_id(1, 1, 1), CellState::kRejected, "");
  auto lora = store.summary().groups[0].values;
  ASSERT_EQ(lora.size(), 2u);
  EXPECT_EQ(lora[0].value, "name-000001");  // 2 picked, 0 rejected
  EXPECT_EQ(lora[1].value, "name-000002");  // 2 picked, 1 rejected
  auto seed = store.summary().groups[3].values;
  EXPECT_EQ(seed[0].value, "1");  // 2 picked, 0 rejected; seed 2: 2 picked, 1 rejected
}

TEST(ReviewStore, SummaryCountsPicksPerSweepValue) {
  // A sweep's sheet: the LoRA files are two runs, their facets the runs' varied values.
  ls::test::TempDir dir;
  json doc = make_review_sheet_doc();
  doc["axes"][0]["facets"] = {{{"learning_rate", "1e-4"}, {"network_dim", "4"}}, {{"learning_rate", "5e-5"}, {"network_dim", "4"}}};
  write_review_sheet_folder(dir.path(), doc);
  ls::review::ReviewStore store(dir.path());
  make_four_choices(store);
  json summary = ls::review::summary_to_json(store.summary());
  ASSERT_EQ(summary["groups"].size(), 6u);  // 2 sweep keys, then lora, strength, epoch, seed
  EXPECT_EQ(summary["groups"][0], (json{{"kind", "sweep"}, {"title", "learning_rate"}, {"values", {v("5e-5", 2, 0), v("1e-4", 1, 1)}}}));
  EXPECT_EQ(summary["groups"][1], (json{{"kind", "sweep"}, {"title", "network_dim"}, {"values", {v("4", 3, 1)}}}));
  EXPECT_EQ(summary["groups"][2]["kind"], "lora");
}

// The server on a free port of 127.0.0.1, talked to over a real socket.
class ReviewServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_review_sheet_folder(dir_.path(), make_review_sheet_doc());
    server_ = std::make_unique<ls::review::ReviewServer>(dir_.path());
    port_ = server_->bind(0);
    server_->start();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
  }
  void TearDown() override { server_->stop(); }

  httplib::Result put(const std::string& id, const json& body) {
    return client_->Put(("/api/selections/" + id).c_str(), body.dump(), "application/json");
  }
  int status_of(const std::string& path) {
    auto res = client_->Get(path.c_str());
    return res ? res->status : -1;
  }

  ls::test::TempDir dir_;
  std::unique_ptr<ls::review::ReviewServer> server_;
  std::unique_ptr<httplib::Client> client_;
  int port_ = 0;
};

TEST_F(ReviewServerTest, ServesPageSheetAndImages) {
  EXPECT_GT(port_, 0);
  EXPECT_EQ(server_->url(), "http://127.0.0.1:" + std::to_string(port_) + "/");
  auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("{\"mode\":\"server\"}"), std::string::npos);
  EXPECT_NE(page->body.find("lorastudioReview"), std::string::npos);  // review.js inlined
  auto sheet = client_->Get("/sheet.json");
  ASSERT_TRUE(sheet);
  EXPECT_EQ(json::parse(sheet->body), make_review_sheet_doc());
  std::string image = "cells/" + review_cell_id(1, 1, 0) + ".png";
  auto png = client_->Get(("/files/" + image).c_str());
  ASSERT_TRUE(png);
  EXPECT_EQ(png->status, 200);
  EXPECT_EQ(png->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(png->body, ls::core::read_file(dir_ / image));
  EXPECT_EQ(status_of("/files/grid-001.png"), 200);
  EXPECT_EQ(status_of("/files/cells/ffffffffffffffff.png"), 404);
  auto selections = client_->Get("/api/selections");
  ASSERT_TRUE(selections);
  EXPECT_EQ(json::parse(selections->body)["cells"], json::object());
}

TEST_F(ReviewServerTest, PicksLandOnDisk) {
  auto first = put(review_cell_id(0, 0, 0), {{"state", "picked"}, {"note", "best"}});
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  auto second = client_->Post(("/api/selections/" + review_cell_id(1, 1, 1)).c_str(), R"({"state": "picked"})", "application/json");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200);
  json doc = json::parse(second->body);
  EXPECT_EQ(doc["cells"].size(), 2u);
  json on_disk = json::parse(ls::core::read_file(dir_ / "selections.json"));
  EXPECT_EQ(on_disk, doc);
  EXPECT_EQ(on_disk["cells"][review_cell_id(0, 0, 0)], (json{{"state", "picked"}, {"note", "best"}}));
  EXPECT_EQ(on_disk["cells"][review_cell_id(1, 1, 1)], (json{{"state", "picked"}}));
  // A note-only change keeps the state; state none with no note removes the entry.
  auto noted = put(review_cell_id(0, 0, 0), {{"note", "best hands"}});
  ASSERT_TRUE(noted);
  EXPECT_EQ(json::parse(noted->body)["cells"][review_cell_id(0, 0, 0)], (json{{"state", "picked"}, {"note", "best hands"}}));
  put(review_cell_id(1, 1, 1), {{"state", "none"}});
  EXPECT_EQ(json::parse(ls::core::read_file(dir_ / "selections.json"))["cells"].size(), 1u);
  auto summary = client_->Get("/api/summary");
  ASSERT_TRUE(summary);
  json s = json::parse(summary->body);
  EXPECT_EQ(s["picked"], 1);
  EXPECT_EQ(s["groups"][0]["values"][0], (json{{"value", "name-000001"}, {"picked", 1}, {"rejected", 0}}));
}

TEST_F(ReviewServerTest, RefusesBadWrites) {
  auto unknown = put("ffffffffffffffff", {{"state", "picked"}});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_NE(json::parse(unknown->body)["error"].get<std::string>().find("no cell with id"), std::string::npos);
  auto bad_state = put(review_cell_id(0, 0, 0), {{"state", "maybe"}});
  ASSERT_TRUE(bad_state);
  EXPECT_EQ(bad_state->status, 400);
  auto bad_key = put(review_cell_id(0, 0, 0), {{"stat", "picked"}});
  ASSERT_TRUE(bad_key);
  EXPECT_EQ(bad_key->status, 400);
  auto not_json = client_->Put(("/api/selections/" + review_cell_id(0, 0, 0)).c_str(), "{nope", "application/json");
  ASSERT_TRUE(not_json);
  EXPECT_EQ(not_json->status, 400);
  // A cross-site form can only send text/plain without a preflight.
  auto form = client_->Put(("/api/selections/" + review_cell_id(0, 0, 0)).c_str(), R"({"state":"picked"})", "text/plain");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 415);
  EXPECT_FALSE(fs::exists(dir_ / "selections.json"));  // nothing above was saved
  // DNS rebinding: another Host name that resolves to 127.0.0.1 is refused.
  httplib::Headers evil_host = {{"Host", "evil.example:" + std::to_string(port_)}};
  auto rebound = client_->Get("/sheet.json", evil_host);
  ASSERT_TRUE(rebound);
  EXPECT_EQ(rebound->status, 403);
  httplib::Headers localhost = {{"Host", "localhost:" + std::to_string(port_)}};
  auto local = client_->Get("/api/selections", localhost);
  ASSERT_TRUE(local);
  EXPECT_EQ(local->status, 200);
}

TEST_F(ReviewServerTest, FilesStayInsideTheSheetFolder) {
  ls::test::TempDir outside;
  ls::core::write_file_atomic(outside / "secret.png", "not for the browser");
  fs::create_symlink(outside / "secret.png", dir_ / "cells" / "link.png");
  fs::create_directory_symlink(outside.path(), dir_ / "out");
  ls::core::write_file_atomic(dir_ / "notes.txt", "text");
  std::vector<std::pair<std::string, int>> cases = {
      {"/files/../sheet.json", 400},        {"/files/..%2fsheet.json", 400},
      {"/files/%2e%2e/x", 400},             {"/files/%2e%2e%2fsheet.json", 400},
      {"/files/cells/..%2F..%2Fsheet.json", 400}, {"/files//etc/passwd", 400},
      {"/files/%2fetc%2fpasswd", 400},      {"/files/cells\\..\\sheet.json", 400},
      {"/files/cells/../../x.png", 400},    {"/files/./grid-000.png", 400},
      {"/files/sheet.json", 403},           {"/files/selections.json", 403},
      {"/files/notes.txt", 403},            {"/files/cells/link.png", 403},
      {"/files/out/secret.png", 403},       {"/files/%63ells/x.png", 400},
  };
  for (const auto& [path, expected] : cases) {
    auto res = client_->Get(path.c_str());
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, expected) << path;
    EXPECT_EQ(res->body.find("lorastudio-sheet"), std::string::npos) << path;
    EXPECT_EQ(res->body.find("not for the browser"), std::string::npos) << path;
  }
  // sheet.json only at its own route.
  EXPECT_EQ(status_of("/cells/../sheet.json"), 404);
  EXPECT_EQ(status_of("/sheet.json"), 200);
  EXPECT_EQ(ls::review::check_file_request(dir_.path(), "grid-000.png"), 0);
  EXPECT_EQ(ls::review::check_file_request(dir_.path(), "cells/link.png"), 403);
}

TEST(ReviewServer, BindRefusesATakenPort) {
  ls::test::TempDir dir;
  write_review_sheet_folder(dir.path(), make_review_sheet_doc());
  ls::review::ReviewServer first(dir.path());
  int port = first.bind(0);
  ls::review::ReviewServer second(dir.path());
  EXPECT_NE(error_of([&] { second.bind(port); }).find("cannot listen on 127.0.0.1:" + std::to_string(port)),
            std::string::npos);
}

TEST(ReviewPage, Base64MatchesRfc4648) {
  EXPECT_EQ(ls::review::base64_encode(""), "");
  EXPECT_EQ(ls::review::base64_encode("f"), "Zg==");
  EXPECT_EQ(ls::review::base64_encode("fo"), "Zm8=");
  EXPECT_EQ(ls::review::base64_encode("foo"), "Zm9v");
  EXPECT_EQ(ls::review::base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(ls::review::base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(ls::review::base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(ls::review::base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(ReviewPage, StaticPageCarriesEverything) {
  ls::test::TempDir dir;
  json doc = make_review_sheet_doc();
  doc["cells"][0]["params"]["prompt"] = "</script><script>alert(1)</script> /*@LS_SCRIPT@*/";
  write_review_sheet_folder(dir.path(), doc);
  ls::review::ReviewStore store(dir.path());
  store.set(review_cell_id(1, 0, 0), CellState::kPicked, "keep & compare <b>");
  std::string page = ls::review::static_review_page(store);
  // Every template marker filled; the one left is the prompt's, inside the data.
  EXPECT_EQ(page.find("/*@LS_"), page.rfind("/*@LS_"));
  EXPECT_NE(page.find("\\u003c/script\\u003e\\u003cscript\\u003ealert(1)"), std::string::npos);
  EXPECT_NE(page.find("\"mode\":\"static\""), std::string::npos);
  EXPECT_NE(page.find("lorastudioReview"), std::string::npos);
  // Each image as a data: URI of its exact bytes.
  for (const auto& cell : store.sheet().cells) {
    std::string uri = "data:image/png;base64," + ls::review::base64_encode(ls::core::read_file(dir / cell.image));
    EXPECT_NE(page.find(uri), std::string::npos) << cell.id;
  }
  // The data block is JSON that parses back to the sheet and the current selections.
  std::string open = "<script type=\"application/json\" id=\"ls-data\">";
  size_t begin = page.find(open) + open.size();
  size_t end = page.find("</script>", begin);
  json data = json::parse(page.substr(begin, end - begin));
  EXPECT_EQ(data["sheet"], doc);
  EXPECT_EQ(data["selections"], ls::review::selections_to_json(store.selections()));
  EXPECT_EQ(data["storageKey"].get<std::string>().rfind("lorastudio-review:", 0), 0u);
  // Only the two real script elements close; nothing is fetched from elsewhere.
  size_t closes = 0;
  for (size_t at = page.find("</script>"); at != std::string::npos; at = page.find("</script>", at + 1)) ++closes;
  EXPECT_EQ(closes, 2u);
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  ls::review::write_static_review_page(store, dir / "review.html");
  EXPECT_EQ(ls::core::read_file(dir / "review.html"), page);
}

}  // namespace
