// The caption editor's server over a real socket on 127.0.0.1: list, tags, tokens, saves that
// name the text they replace (conflicts refused, the file keeps the disk version), bulk changes
// reporting exactly the files changed and undone byte for byte, re-slicing saved probabilities,
// the doctor's verdict, and nothing outside the dataset readable or writable.
#include <fstream>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "caption/caption_history.h"
#include "caption/caption_server.h"
#include "caption/caption_store.h"
#include "caption/selected_tags.h"
#include "caption/tag_probs.h"
#include "core/atomic_file.h"
#include "io/image.h"
#include "support/support.h"
#include "test_paths.h"

namespace caption_server_test {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ls::caption::decode_request_path;

TEST(CaptionServerPaths, DecodeRequestPathIsStrict) {
  EXPECT_EQ(decode_request_path("0/a.png"), "0/a.png");
  EXPECT_EQ(decode_request_path("0/10_lsshape/img%20one.png"), "0/10_lsshape/img one.png");
  EXPECT_EQ(decode_request_path("0/%E5%86%99%E7%9C%9F.jpg"), "0/\xE5\x86\x99\xE7\x9C\x9F.jpg");
  for (const char* bad : {"", "/0/a.png", "0//a.png", "0/./a.png", "0/../a.png", "0/%2e%2e/a.png", "0/%2E/a.png",
                          "0/a%2fb.png", "0/a%5cb.png", "0/a\\b.png", "0/a%00.png", "0/a%2.png", "0/a%zz.png",
                          "0/a.png%", "0/", "0/a.png/"}) {
    EXPECT_FALSE(decode_request_path(bad).has_value()) << bad;
  }
}

// A dataset folder: three images (one in a subfolder, one a JPEG), two captions, one image the
// doctor refuses (not an image at all).
struct Dataset {
  ls::test::TempDir dir;
  Dataset() {
    cv::Mat rgb(40, 60, CV_8UC3, cv::Scalar(200, 30, 30));
    ls::io::write_image((dir / "a.png").string(), rgb);
    ls::io::write_image((dir / "b.png").string(), cv::Mat(600, 300, CV_8UC3, cv::Scalar(10, 90, 10)));
    fs::create_directories(dir / "10_sub");
    ls::io::write_image((dir / "10_sub" / "c d.jpg").string(), rgb);
    put("a.txt", "lsshape, red circle, large\n");
    put("10_sub/c d.txt", "lsshape, blue square, red circle\n");
  }
  void put(const std::string& name, const std::string& text) const { std::ofstream(dir / name, std::ios::binary) << text; }
  std::string get(const std::string& name) const { return ls::core::read_file(dir / name); }
};

class CaptionServerTest : public ::testing::Test {
 protected:
  void SetUp() override { start(data_.dir.path().string()); }
  void TearDown() override {
    if (server_) server_->stop();
  }
  void start(const std::string& source) {
    if (server_) server_->stop();
    ls::caption::CaptionServerOptions o;
    o.source = source;
    o.tokenizer = ls::test::kClipVocab;
    o.show_progress = false;
    server_ = std::make_unique<ls::caption::CaptionServer>(o);
    port_ = server_->bind(0);
    server_->start();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
  }
  json get_json(const std::string& path) {
    auto res = client_->Get(path.c_str());
    EXPECT_TRUE(res) << path;
    EXPECT_EQ(res->status, 200) << path << ": " << res->body;
    return json::parse(res->body);
  }
  httplib::Result post(const std::string& path, const json& body) {
    return client_->Post(path.c_str(), body.dump(), "application/json");
  }
  httplib::Result put_caption(const std::string& id, const std::string& text, const std::string& hash) {
    return client_->Put("/api/caption", json{{"id", id}, {"text", text}, {"hash", hash}}.dump(), "application/json");
  }
  json image(const std::string& id) {
    const json doc = get_json("/api/images");
    for (const auto& e : doc["images"])
      if (e["id"] == id) return e;
    ADD_FAILURE() << "no image " << id;
    return {};
  }
  int status_of(const std::string& path) {
    auto res = client_->Get(path.c_str());
    return res ? res->status : -1;
  }

  Dataset data_;
  std::unique_ptr<ls::caption::CaptionServer> server_;
  std::unique_ptr<httplib::Client> client_;
  int port_ = 0;
};

TEST_F(CaptionServerTest, ListsImagesTagsAndTokens) {
  json doc = get_json("/api/images");
  EXPECT_EQ(doc["tokenizer"], true);
  EXPECT_EQ(doc["token_limits"], json({75, 225}));
  ASSERT_EQ(doc["roots"].size(), 1u);
  ASSERT_EQ(doc["images"].size(), 3u);
  const json& c = doc["images"][0];  // sorted by path: "10_sub/c d.jpg" first
  EXPECT_EQ(c["id"], "0:10_sub/c d.jpg");
  EXPECT_EQ(c["caption_path"], "10_sub/c d.txt");
  EXPECT_EQ(c["tags"], json({"lsshape", "blue square", "red circle"}));
  EXPECT_EQ(c["width"], 60);
  EXPECT_EQ(c["height"], 40);
  const json& a = doc["images"][1];
  EXPECT_EQ(a["text"], "lsshape, red circle, large\n");
  EXPECT_EQ(a["hash"], ls::caption::caption_hash("lsshape, red circle, large\n"));
  // CLIP: "lsshape" is 2 tokens (ls shape), then "," "red" "circle" "," "large".
  EXPECT_EQ(a["tokens"], 7);
  const json& b = doc["images"][2];
  EXPECT_EQ(b["text"], nullptr);
  EXPECT_EQ(b["missing"], true);
  EXPECT_EQ(b["refused"], false);
  auto tokens = post("/api/tokens", {{"text", "red circle"}});
  ASSERT_TRUE(tokens);
  EXPECT_EQ(json::parse(tokens->body)["tokens"], 2);
  json tags = get_json("/api/tags");
  EXPECT_EQ(tags["images"], 3);
  EXPECT_EQ(tags["tags"][0], (json{{"tag", "lsshape"}, {"count", 2}}));
  EXPECT_EQ(tags["tags"][1], (json{{"tag", "red circle"}, {"count", 2}}));
  EXPECT_EQ(tags["tags"].size(), 4u);
  auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("{\"mode\":\"server\"}"), std::string::npos);
  EXPECT_EQ(page->body.find("/*@LS_SCRIPT@*/"), std::string::npos);
}

TEST_F(CaptionServerTest, SaveNamesTheTextItReplacesAndAConflictKeepsTheDiskVersion) {
  const json a = image("0:a.png");
  auto saved = put_caption("0:a.png", "lsshape, red circle, small\n", a["hash"]);
  ASSERT_TRUE(saved);
  ASSERT_EQ(saved->status, 200) << saved->body;
  json answer = json::parse(saved->body);
  EXPECT_EQ(answer["saved"], true);
  EXPECT_EQ(answer["image"]["text"], "lsshape, red circle, small\n");
  EXPECT_EQ(data_.get("a.txt"), "lsshape, red circle, small\n");
  const std::string run = answer["run"]["run"];
  auto history = ls::caption::read_history(data_.dir.path());
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].run, run);
  EXPECT_EQ(history[0].source, "editor");
  EXPECT_EQ(*history[0].old_text, "lsshape, red circle, large\n");
  // The page still holds the first hash: the file changed since, so the save is refused.
  data_.put("a.txt", "edited in another program\n");
  auto refused = put_caption("0:a.png", "from the page\n", answer["image"]["hash"]);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 409);
  json conflict = json::parse(refused->body);
  EXPECT_EQ(conflict["on_disk"], "edited in another program\n");
  EXPECT_EQ(conflict["image"]["text"], "edited in another program\n");
  EXPECT_NE(conflict["error"].get<std::string>().find("changed on disk"), std::string::npos);
  EXPECT_EQ(data_.get("a.txt"), "edited in another program\n");
  // A new caption: the hash of "no file" is "".
  auto created = put_caption("0:b.png", "lsshape\n", "");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 200);
  EXPECT_EQ(data_.get("b.txt"), "lsshape\n");
  // Malformed writes.
  EXPECT_EQ(put_caption("0:zz.png", "x", "")->status, 404);
  EXPECT_EQ(put_caption("0:../a.png", "x", "")->status, 404);
  EXPECT_EQ(put_caption("7:a.png", "x", "")->status, 404);
  EXPECT_EQ(client_->Put("/api/caption", R"({"id": "0:a.png", "text": 3, "hash": ""})", "application/json")->status, 400);
  EXPECT_EQ(client_->Put("/api/caption", "{nope", "application/json")->status, 400);
  EXPECT_EQ(client_->Put("/api/caption", json{{"id", "0:a.png"}, {"text", "x"}, {"hash", ""}}.dump(), "text/plain")->status,
            415);
  EXPECT_EQ(data_.get("a.txt"), "edited in another program\n");
}

TEST_F(CaptionServerTest, BulkChangesReportTheirFilesAndUndoByteForByte) {
  const std::string a0 = data_.get("a.txt"), c0 = data_.get("10_sub/c d.txt");
  // Preview writes nothing.
  auto preview = post("/api/bulk", {{"op", "add_prefix"}, {"tag", "ohwx"}, {"ids", {"0:a.png", "0:b.png"}}, {"preview", true}});
  ASSERT_TRUE(preview);
  ASSERT_EQ(preview->status, 200) << preview->body;
  json p = json::parse(preview->body);
  EXPECT_EQ(p["changed"], json({"0:a.png", "0:b.png"}));
  EXPECT_EQ(p["texts"]["0:a.png"], "ohwx, lsshape, red circle, large\n");
  EXPECT_EQ(p["runs"], json::array());
  EXPECT_EQ(data_.get("a.txt"), a0);
  EXPECT_FALSE(fs::exists(data_.dir / "b.txt"));
  auto added = post("/api/bulk", {{"op", "add_prefix"}, {"tag", "ohwx"}, {"ids", {"0:a.png", "0:b.png"}}});
  ASSERT_TRUE(added);
  json add = json::parse(added->body);
  EXPECT_EQ(add["changed"], json({"0:a.png", "0:b.png"}));
  ASSERT_EQ(add["runs"].size(), 1u);
  EXPECT_EQ(data_.get("a.txt"), "ohwx, lsshape, red circle, large\n");
  EXPECT_EQ(data_.get("b.txt"), "ohwx");
  // Rename everywhere: whole tags only.
  auto renamed = post("/api/bulk", {{"op", "rename_tag"}, {"from", "red circle"}, {"to", "crimson circle"}, {"ids", "all"}});
  ASSERT_TRUE(renamed);
  json ren = json::parse(renamed->body);
  EXPECT_EQ(ren["changed"], json({"0:10_sub/c d.jpg", "0:a.png"}));
  EXPECT_EQ(data_.get("10_sub/c d.txt"), "lsshape, blue square, crimson circle\n");
  // Undo both, newest first: every file as it was, b.txt gone again.
  json runs = json::array({add["runs"][0], ren["runs"][0]});
  auto undone = post("/api/undo", {{"runs", runs}});
  ASSERT_TRUE(undone);
  ASSERT_EQ(undone->status, 200) << undone->body;
  json u = json::parse(undone->body);
  EXPECT_EQ(u["conflicts"], json::array());
  EXPECT_EQ(u["removed"], 1);
  EXPECT_EQ(data_.get("a.txt"), a0);
  EXPECT_EQ(data_.get("10_sub/c d.txt"), c0);
  EXPECT_FALSE(fs::exists(data_.dir / "b.txt"));
  json history = get_json("/api/history")["runs"];
  ASSERT_EQ(history.size(), 4u);  // two changes, two undos
  int undone_runs = 0;
  for (const auto& r : history) undone_runs += r["undone"].get<bool>();
  EXPECT_EQ(undone_runs, 2);
  // Refusals: unknown op, bad regex, unknown id, missing ids; nothing changed.
  EXPECT_EQ(post("/api/bulk", {{"op", "shuffle"}, {"ids", "all"}})->status, 400);
  EXPECT_EQ(post("/api/bulk", {{"op", "regex_replace"}, {"find", "(("}, {"ids", "all"}})->status, 400);
  EXPECT_EQ(post("/api/bulk", {{"op", "dedupe"}, {"ids", {"0:nope.png"}}})->status, 404);
  EXPECT_EQ(post("/api/bulk", {{"op", "dedupe"}})->status, 400);
  EXPECT_EQ(post("/api/undo", {{"runs", {{{"root", 0}, {"run", "20000101-000000-0000"}}}}})->status, 404);
  EXPECT_EQ(data_.get("a.txt"), a0);
}

TEST_F(CaptionServerTest, RetagReslicesSavedProbabilities) {
  ls::caption::ImageProbs probs;
  probs.model = "wd-vit-tagger-v3";
  probs.tags = {{0, "general", 9, 0.9f}, {1, "sensitive", 9, 0.1f}, {10, "red_circle", 0, 0.8f},
                {11, "blue_sky", 0, 0.3f}, {12, "hat", 0, 0.06f}};
  ls::caption::write_tag_probs(data_.dir.path(), {{"a.png", probs}});
  json a = image("0:a.png");
  EXPECT_EQ(a["probs"], true);
  EXPECT_EQ(image("0:b.png")["probs"], false);
  EXPECT_EQ(get_json("/api/images")["roots"][0]["has_probs"], true);
  auto at = [&](double general) {
    auto res = post("/api/bulk", {{"op", "retag"}, {"general_threshold", general}, {"ids", "all"}, {"preview", true}});
    EXPECT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;
    return json::parse(res->body)["texts"];
  };
  EXPECT_EQ(at(0.5), json({{"0:a.png", "red_circle\n"}}));
  EXPECT_EQ(at(0.25), json({{"0:a.png", "red_circle, blue_sky\n"}}));
  EXPECT_EQ(post("/api/bulk", {{"op", "retag"}, {"general_threshold", 0.01}, {"ids", "all"}})->status, 400);
  EXPECT_EQ(data_.get("a.txt"), "lsshape, red circle, large\n");  // previews only
}

TEST_F(CaptionServerTest, NothingOutsideTheDatasetIsReadableOrWritable) {
  ls::test::TempDir outside;
  ls::io::write_image((outside / "secret.png").string(), cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  ls::core::write_file_atomic(outside / "secret.txt", "secret caption\n");
  fs::create_symlink(outside / "secret.png", data_.dir / "link.png");                 // an image leading out
  ls::io::write_image((data_.dir / "e.png").string(), cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  fs::create_symlink(outside / "secret.txt", data_.dir / "e.txt");                    // a caption leading out
  fs::create_directory_symlink(outside.path(), data_.dir / "out");
  start(data_.dir.path().string());  // rescan
  const std::string secret_png = ls::core::read_file(outside / "secret.png");
  std::vector<std::pair<std::string, int>> cases = {
      {"/files/0/a.png", 200},           {"/thumbs/0/a.png", 200},         {"/files/0/10_sub/c%20d.jpg", 200},
      {"/files/0/../a.png", 400},        {"/files/0/..%2fa.txt", 400},     {"/files/0/%2e%2e/x.png", 400},
      {"/files/0/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400},                   {"/files//etc/passwd", 400},
      {"/files/%2fetc%2fpasswd", 400},   {"/files/0/10_sub\\..\\a.png", 400}, {"/files/0/./a.png", 400},
      {"/files/0/a.txt", 404},           {"/files/0/.lorastudio/caption_history.jsonl", 404},
      {"/files/1/a.png", 404},           {"/files/x/a.png", 404},          {"/files/0", 404},
      {"/files/0/link.png", 403},        {"/thumbs/0/link.png", 403},      {"/files/0/out/secret.png", 403},
      {"/thumbs/0/../../etc/passwd", 400}, {"/files/0/a.png%00.txt", 400},
  };
  for (const auto& [path, expected] : cases) {
    auto res = client_->Get(path.c_str());
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, expected) << path << ": " << res->body;
    if (expected != 200) {
      EXPECT_EQ(res->body.find(secret_png), std::string::npos) << path;
    }
  }
  // The caption that links out is neither shown nor written.
  json e = image("0:e.png");
  EXPECT_EQ(e["text"], nullptr);
  EXPECT_EQ(e["refused"], true);
  json images = get_json("/api/images");
  EXPECT_EQ(images.dump().find("secret caption"), std::string::npos);
  auto write = put_caption("0:e.png", "overwritten\n", "");
  ASSERT_TRUE(write);
  EXPECT_EQ(write->status, 403);
  auto bulk = post("/api/bulk", {{"op", "add_tag"}, {"tag", "x"}, {"ids", "all"}});
  ASSERT_TRUE(bulk);
  EXPECT_EQ(json::parse(bulk->body)["changed"].dump().find("e.png"), std::string::npos);
  EXPECT_EQ(ls::core::read_file(outside / "secret.txt"), "secret caption\n");
  EXPECT_TRUE(fs::is_symlink(data_.dir / "e.txt"));
  // DNS rebinding: another Host name that resolves to 127.0.0.1 is refused.
  auto rebound = client_->Get("/api/images", httplib::Headers{{"Host", "evil.example:" + std::to_string(port_)}});
  ASSERT_TRUE(rebound);
  EXPECT_EQ(rebound->status, 403);
  auto local = client_->Get("/api/images", httplib::Headers{{"Host", "localhost:" + std::to_string(port_)}});
  ASSERT_TRUE(local);
  EXPECT_EQ(local->status, 200);
}

TEST_F(CaptionServerTest, ThumbnailsAreSmallJpegs) {
  auto res = client_->Get("/thumbs/0/b.png");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "image/jpeg");
  cv::Mat thumb = ls::io::decode_image_rgb(std::vector<uint8_t>(res->body.begin(), res->body.end()), "thumb");
  EXPECT_EQ(thumb.rows, 256);
  EXPECT_EQ(thumb.cols, 128);
  auto full = client_->Get("/files/0/b.png");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(full->body, data_.get("b.png"));
}

TEST_F(CaptionServerTest, TheDoctorsRefusalsAreFlagged) {
  data_.put("broken.png", "this is not a PNG");
  start(data_.dir.path().string());
  json broken = image("0:broken.png");
  EXPECT_EQ(broken["refused"], true);
  ASSERT_FALSE(broken["problems"].empty());
  EXPECT_NE(broken["problems"][0].get<std::string>().find("broken.png"), std::string::npos);
  EXPECT_EQ(image("0:a.png")["refused"], false);
  EXPECT_EQ(status_of("/thumbs/0/broken.png"), 422);
}

TEST_F(CaptionServerTest, ADatasetTomlServesEverySubsetFolder) {
  ls::test::TempDir other;
  ls::io::write_image((other / "x.png").string(), cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  std::ofstream(other / "x.caption", std::ios::binary) << "from the second subset\n";
  const fs::path toml = data_.dir / "dataset.toml";
  std::ofstream(toml) << "[[datasets]]\n[[datasets.subsets]]\nimage_dir = '" << data_.dir.path().string()
                      << "'\n[[datasets.subsets]]\nimage_dir = '" << other.path().string()
                      << "'\ncaption_extension = '.caption'\n";
  start(toml.string());
  json doc = get_json("/api/images");
  ASSERT_EQ(doc["roots"].size(), 2u);
  EXPECT_EQ(doc["roots"][1]["caption_extension"], ".caption");
  ASSERT_EQ(doc["images"].size(), 3u);  // a TOML subset is not recursive: 10_sub/ is left out
  EXPECT_EQ(doc["images"][2]["id"], "1:x.png");
  EXPECT_EQ(doc["images"][2]["text"], "from the second subset\n");
  auto saved = put_caption("1:x.png", "edited\n", doc["images"][2]["hash"]);
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->status, 200);
  EXPECT_EQ(ls::core::read_file(other / "x.caption"), "edited\n");
  EXPECT_EQ(ls::caption::read_history(other.path()).size(), 1u);  // the history of that folder
  EXPECT_EQ(status_of("/files/1/x.png"), 200);
}

}  // namespace caption_server_test
