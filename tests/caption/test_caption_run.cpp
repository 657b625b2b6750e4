// `caption` over the synthetic dataset with the tiny ViT tagger fixture: existing captions kept
// byte for byte, overwrite + undo restoring every file, a corrupt image named while the others
// are captioned, dry runs writing nothing, and retag on saved probabilities equal to a model run.
#include <fstream>

#include <gtest/gtest.h>

#include "caption/caption_history.h"
#include "caption/caption_run.h"
#include "caption/caption_text.h"
#include "core/atomic_file.h"
#include "data/synthetic.h"
#include "support/support.h"

namespace caption_run_test {

namespace fs = std::filesystem;
using ls::caption::ExistingMode;

std::string tagger_dir() { return (fs::path(ls::test::kSourceDir) / "tests/fixtures/tagger/vit").string(); }

// Six synthetic images with their captions; the last two captions removed.
struct Dataset {
  ls::test::TempDir root;
  std::vector<std::string> images;
  fs::path dir;
  Dataset() {
    ls::data::SyntheticOptions o;
    o.images = 6, o.min_side = 64, o.max_side = 96, o.seed = 7;
    auto d = ls::data::make_synthetic_dataset((root / "data").string(), o);
    dir = d.train_dir;
    images = d.images;
    fs::remove(caption(4));
    fs::remove(caption(5));
  }
  fs::path caption(size_t i) const { return fs::path(images[i]).replace_extension(".txt"); }
  std::map<std::string, std::string> snapshot() const {  // every caption file's bytes
    std::map<std::string, std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".txt") out[e.path().filename().string()] = ls::core::read_file(e.path());
    return out;
  }
};

ls::caption::CaptionOptions options(const Dataset& d) {
  ls::caption::CaptionOptions o;
  o.dir = d.dir.string();
  o.model_dir = tagger_dir();
  o.batch_size = 4;
  o.show_progress = false;
  // Random weights give probabilities around 0.5: thresholds that keep some tags and drop others.
  o.selection.general_threshold = 0.5;
  o.selection.character_threshold = 0.5;
  return o;
}

TEST(CaptionRun, SkipKeepsExistingCaptionsByteForByte) {
  Dataset d;
  auto before = d.snapshot();
  ASSERT_EQ(before.size(), 4u);
  auto s = ls::caption::run_caption(options(d));
  EXPECT_EQ(s.images, 6);
  EXPECT_EQ(s.skipped, 4);
  EXPECT_EQ(s.captioned, 2);
  EXPECT_TRUE(s.failed.empty());
  auto after = d.snapshot();
  for (const auto& [name, text] : before) EXPECT_EQ(after[name], text) << name;
  EXPECT_EQ(after.size(), 6u);
  EXPECT_FALSE(after[d.caption(4).filename().string()].empty());
  EXPECT_FALSE(s.run.empty());
  EXPECT_TRUE(fs::exists(s.log_path));
}

TEST(CaptionRun, OverwriteThenUndoRestoresEveryFile) {
  Dataset d;
  auto before = d.snapshot();
  auto o = options(d);
  o.existing = ExistingMode::kOverwrite;
  o.selection.prefix = "lsshape";
  auto s = ls::caption::run_caption(o);
  EXPECT_EQ(s.captioned, 6);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(ls::core::read_file(d.caption(i)).rfind("lsshape, ", 0), 0u) << i;
  auto undo = ls::caption::undo_run(d.dir, s.run);
  EXPECT_EQ(undo.restored, 4);
  EXPECT_EQ(undo.removed, 2);
  EXPECT_EQ(d.snapshot(), before);
}

TEST(CaptionRun, CorruptImageIsNamedAndTheOthersAreCaptioned) {
  Dataset d;
  {
    std::ofstream bad(d.dir / "zz_corrupt.png", std::ios::binary);
    bad << "\x89PNG\r\n\x1a\n broken";
  }
  auto o = options(d);
  o.existing = ExistingMode::kOverwrite;
  auto s = ls::caption::run_caption(o);
  ASSERT_EQ(s.failed.size(), 1u);
  EXPECT_NE(s.failed[0].find("zz_corrupt.png"), std::string::npos) << s.failed[0];
  EXPECT_EQ(s.captioned, 6);
  EXPECT_FALSE(fs::exists(d.dir / "zz_corrupt.txt"));
}

TEST(CaptionRun, DryRunWritesNothing) {
  Dataset d;
  auto before = d.snapshot();
  auto o = options(d);
  o.existing = ExistingMode::kAppend;
  o.dry_run = true;
  auto s = ls::caption::run_caption(o);
  EXPECT_EQ(s.captioned, 6);
  EXPECT_EQ(s.dry_run_lines.size(), 6u);
  EXPECT_EQ(d.snapshot(), before);
  EXPECT_FALSE(fs::exists(d.dir / ".lorastudio"));
}

TEST(CaptionRun, RetagOnSavedProbabilitiesEqualsAModelRun) {
  Dataset a, b;  // the same images
  auto o = options(a);
  o.existing = ExistingMode::kOverwrite;
  o.save_probs = true;
  ls::caption::run_caption(o);
  // Captions at another threshold: once from the model, once re-sliced from the saved file.
  auto ob = options(b);
  ob.existing = ExistingMode::kOverwrite;
  ob.selection.general_threshold = 0.6;
  ob.selection.use_rating_tags = true;
  ls::caption::run_caption(ob);
  ls::caption::RetagOptions r;
  r.dir = a.dir.string();
  r.selection = ob.selection;
  auto s = ls::caption::run_retag(r);
  EXPECT_EQ(s.images, 6);
  EXPECT_EQ(a.snapshot(), b.snapshot());
  // Below the saved floor the probabilities are not all there: refused.
  r.selection.general_threshold = 0.01;
  EXPECT_NE(ls::test::error_of([&] { ls::caption::run_retag(r); }).find("at least 0.05"), std::string::npos);
}

TEST(CaptionText, AppendAndPrependAddOnlyMissingTags) {
  using ls::caption::merged_caption;
  const std::vector<std::string> tags = {"solo", "smile", "hat"};
  EXPECT_EQ(merged_caption(ExistingMode::kOverwrite, std::string("x"), "lsk", tags, ", "), "lsk, solo, smile, hat\n");
  EXPECT_EQ(merged_caption(ExistingMode::kAppend, std::string("my words,smile \n"), "", tags, ", "),
            "my words,smile, solo, hat\n");
  EXPECT_EQ(merged_caption(ExistingMode::kPrepend, std::string("hat, solo"), "lsk", tags, ", "), "lsk, smile, hat, solo\n");
  // Nothing missing: the old bytes, untouched (even without a final newline).
  EXPECT_EQ(merged_caption(ExistingMode::kAppend, std::string("lsk, hat, smile, solo"), "lsk", tags, ", "),
            "lsk, hat, smile, solo");
  EXPECT_EQ(merged_caption(ExistingMode::kAppend, std::nullopt, "", tags, ", "), "solo, smile, hat\n");
}

TEST(CaptionRun, CliSummaryAndExitCode) {
  Dataset d;
  std::ofstream(d.dir / "zz_corrupt.jpg") << "not a jpeg";
  auto r = ls::test::run_lorastudio("caption " + d.dir.string() + " --model_dir " + tagger_dir() +
                                    " --general_threshold 0.5 --frequency_tags 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("zz_corrupt.jpg"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("captioned 2, unchanged 0, skipped 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tag frequencies:"), std::string::npos) << r.out;
  auto undo = ls::test::run_lorastudio("caption undo " + d.dir.string() + " 2>&1");
  EXPECT_EQ(undo.exit_code, 0) << undo.out;
  EXPECT_NE(undo.out.find("removed 2"), std::string::npos) << undo.out;
  auto missing = ls::test::run_lorastudio("caption " + d.dir.string() + " 2>&1");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.out.find("error: caption: --model_dir is required"), std::string::npos) << missing.out;
}

}  // namespace caption_run_test
