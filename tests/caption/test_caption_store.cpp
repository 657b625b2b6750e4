// The caption editor's store: entries with hashes and flags, tag counts, saves refused on a
// changed file, bulk operations reporting exactly the files they changed, undone as one run.
#include <fstream>

#include <gtest/gtest.h>

#include "caption/caption_history.h"
#include "caption/caption_store.h"
#include "core/atomic_file.h"
#include "io/image.h"
#include "support/support.h"

namespace caption_store_test {

namespace fs = std::filesystem;
using ls::caption::BulkKind;
using ls::caption::BulkOp;
using ls::caption::CaptionStore;

struct Folder {
  ls::test::TempDir dir;
  Folder() {
    cv::Mat rgb(8, 8, CV_8UC3, cv::Scalar(10, 20, 30));
    for (const char* name : {"a.png", "b.png", "c.png", "sub/d.png"}) {
      fs::create_directories((dir / name).parent_path());
      ls::io::write_image((dir / name).string(), rgb);
    }
    put("a.txt", "1girl, solo,  smile\n");
    put("b.txt", "solo, hat, solo\n");
    put("sub/d.txt", "1girl, solo,  smile\n");  // the same text as a.txt
  }
  void put(const std::string& name, const std::string& text) const { std::ofstream(dir / name, std::ios::binary) << text; }
  std::string get(const std::string& name) const { return ls::core::read_file(dir / name); }
};

TEST(CaptionStore, EntriesCarryTextHashTagsAndFlags) {
  Folder f;
  f.put("c.txt", "  \n");
  CaptionStore store(f.dir.path());
  auto e = store.entries();
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].image, "a.png");
  EXPECT_EQ(e[0].tags, (std::vector<std::string>{"1girl", "solo", "smile"}));
  EXPECT_EQ(e[0].hash, ls::caption::caption_hash("1girl, solo,  smile\n"));
  EXPECT_TRUE(e[0].duplicate);
  EXPECT_TRUE(e[3].duplicate);
  EXPECT_FALSE(e[1].duplicate);
  EXPECT_TRUE(e[2].empty);
  fs::remove(f.dir / "c.txt");
  EXPECT_TRUE(store.entries()[2].missing);
  auto counts = store.tag_counts();
  EXPECT_EQ(counts["solo"], 3);  // b.txt's two "solo" count once
  EXPECT_EQ(counts["1girl"], 2);
}

TEST(CaptionStore, SaveNamesTheTextItReplacesAndRefusesAChangedFile) {
  Folder f;
  CaptionStore store(f.dir.path());
  const std::string loaded = store.entries()[1].hash;
  f.put("b.txt", "edited meanwhile\n");
  auto r = store.save("b.png", "from the page\n", loaded);
  EXPECT_FALSE(r.saved);
  EXPECT_NE(r.conflict.find("changed on disk"), std::string::npos);
  EXPECT_EQ(*r.on_disk, "edited meanwhile\n");
  EXPECT_EQ(f.get("b.txt"), "edited meanwhile\n");
  r = store.save("b.png", "from the page\n", ls::caption::caption_hash("edited meanwhile\n"));
  EXPECT_TRUE(r.saved);
  EXPECT_EQ(f.get("b.txt"), "from the page\n");
  r = store.save("c.png", "new\n", "");  // no file yet: the expected hash is ""
  EXPECT_TRUE(r.saved);
  EXPECT_NE(ls::test::error_of([&] { store.save("zz.png", "x", ""); }).find("no image 'zz.png'"), std::string::npos);
}

TEST(CaptionStore, BulkOperationsReportChangedFilesAndUndoAsOneRun) {
  Folder f;
  CaptionStore store(f.dir.path());
  std::string run;
  BulkOp dedupe;
  dedupe.kind = BulkKind::kDedupe;
  EXPECT_EQ(store.bulk(dedupe, {}, &run), (std::vector<std::string>{"b.png"}));
  EXPECT_EQ(f.get("b.txt"), "solo, hat\n");
  BulkOp prefix;
  prefix.kind = BulkKind::kAddPrefix;
  prefix.prefix = "sks";
  EXPECT_EQ(store.bulk(prefix, {"a.png", "b.png"}), (std::vector<std::string>{"a.png", "b.png"}));
  EXPECT_EQ(f.get("a.txt"), "sks, 1girl, solo, smile\n");
  BulkOp regex;
  regex.kind = BulkKind::kRegexReplace;
  regex.find = "\\bsmile\\b";
  regex.replace = "grin";
  EXPECT_EQ(store.bulk(regex, {}), (std::vector<std::string>{"a.png", "sub/d.png"}));
  BulkOp remove;
  remove.kind = BulkKind::kRemoveTags;
  remove.tags = {"solo"};
  std::string remove_run;
  EXPECT_EQ(store.bulk(remove, {}, &remove_run), (std::vector<std::string>{"a.png", "b.png", "sub/d.png"}));
  EXPECT_EQ(f.get("sub/d.txt"), "1girl, grin\n");
  // The last bulk operation undoes as one step.
  auto undo = ls::caption::undo_run(f.dir.path(), remove_run);
  EXPECT_EQ(undo.restored, 3);
  EXPECT_EQ(f.get("sub/d.txt"), "1girl, solo,  grin\n");
  BulkOp bad;
  bad.kind = BulkKind::kRegexReplace;
  bad.find = "(";
  EXPECT_NE(ls::test::error_of([&] { store.bulk(bad, {}); }).find("not a valid regular expression"), std::string::npos);
}

TEST(CaptionStore, TagOperationsWorkOnWholeTags) {
  Folder f;
  f.put("c.txt", "solo, solo girl\n");
  CaptionStore store(f.dir.path());
  BulkOp rename;
  rename.kind = ls::caption::parse_bulk_kind("rename_tag");
  rename.find = "solo";
  rename.replace = "hat";
  // "solo girl" is another tag; b.txt holds both names: one "hat" stays, in the first place.
  auto preview = store.preview(rename, {});
  ASSERT_EQ(preview.size(), 4u);
  EXPECT_EQ(preview[1].image, "b.png");
  EXPECT_EQ(preview[1].text, "hat\n");
  EXPECT_EQ(preview[2].text, "hat, solo girl\n");
  EXPECT_EQ(f.get("b.txt"), "solo, hat, solo\n");  // a preview writes nothing
  std::vector<ls::caption::BulkChange> changes;
  EXPECT_EQ(store.bulk(rename, {"a.png", "c.png"}, nullptr, &changes), (std::vector<std::string>{"a.png", "c.png"}));
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].text, f.get("a.txt"));
  EXPECT_EQ(f.get("a.txt"), "1girl, hat, smile\n");
  BulkOp add;
  add.kind = ls::caption::parse_bulk_kind("add_tag");
  add.prefix = " blue sky ";
  EXPECT_EQ(store.bulk(add, {"a.png", "b.png"}), (std::vector<std::string>{"a.png", "b.png"}));
  EXPECT_EQ(f.get("a.txt"), "1girl, hat, smile, blue sky\n");
  EXPECT_EQ(store.bulk(add, {"a.png"}), std::vector<std::string>{});  // already there
  EXPECT_NE(ls::test::error_of([] { ls::caption::parse_bulk_kind("shuffle"); }).find("find_replace"), std::string::npos);
}

}  // namespace caption_store_test
