// kohya dataset TOML and folder convention: values, level precedence, and one-line refusals.
#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/dataset_config.h"
#include "support/support.h"

namespace ls::data {
namespace {

std::string error_of(const std::string& toml) {
  try {
    parse_dataset_toml(toml, "data.toml", "/base");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DatasetToml, ReadsEveryLevelNearestWins) {
  const DataConfig c = parse_dataset_toml(R"(
[general]
shuffle_caption = true
caption_extension = ".caption"
keep_tokens = 3
enable_bucket = true

[[datasets]]
resolution = [768, 512]
batch_size = 4
keep_tokens = 2
min_bucket_reso = 320
max_bucket_reso = 1536
bucket_reso_steps = 64
bucket_no_upscale = true
prior_loss_weight = 0.5

  [[datasets.subsets]]
  image_dir = "img/10_sks"
  num_repeats = 10
  class_tokens = "sks dog"
  keep_tokens = 1
  keep_tokens_separator = "|||"
  caption_dropout_rate = 0.1
  caption_dropout_every_n_epochs = 3
  caption_tag_dropout_rate = 0.2
  caption_prefix = "photo,"
  caption_suffix = ", best"
  secondary_separator = ";;;"
  flip_aug = true
  random_crop = true

  [[datasets.subsets]]
  image_dir = "/abs/reg"
  is_reg = true
  shuffle_caption = false

[[datasets]]
resolution = 1024
  [[datasets.subsets]]
  image_dir = "other"
)",
                                          "data.toml", "/base");
  ASSERT_EQ(c.datasets.size(), 2u);
  const DatasetConfig& d = c.datasets[0];
  EXPECT_EQ(d.buckets.resolution, (Reso{768, 512}));
  EXPECT_EQ(d.batch_size, 4);
  EXPECT_EQ(d.buckets.min_bucket_reso, 320);
  EXPECT_EQ(d.buckets.max_bucket_reso, 1536);
  EXPECT_TRUE(d.buckets.bucket_no_upscale);
  EXPECT_DOUBLE_EQ(d.prior_loss_weight, 0.5);
  ASSERT_EQ(d.subsets.size(), 2u);
  const SubsetConfig& s = d.subsets[0];
  EXPECT_EQ(s.image_dir, "/base/img/10_sks");  // relative to the TOML's folder
  EXPECT_EQ(s.num_repeats, 10);
  EXPECT_FALSE(s.is_reg);
  EXPECT_EQ(s.class_tokens, "sks dog");
  EXPECT_EQ(s.caption_extension, ".caption");  // from [general]
  EXPECT_TRUE(s.caption.shuffle_caption);      // from [general]
  EXPECT_EQ(s.caption.keep_tokens, 1);         // subset beats dataset (2) beats general (3)
  EXPECT_EQ(s.caption.keep_tokens_separator, "|||");
  EXPECT_DOUBLE_EQ(s.caption.caption_dropout_rate, 0.1);
  EXPECT_EQ(s.caption.caption_dropout_every_n_epochs, 3);
  EXPECT_DOUBLE_EQ(s.caption.caption_tag_dropout_rate, 0.2);
  EXPECT_EQ(s.caption.caption_prefix, "photo,");
  EXPECT_EQ(s.caption.caption_suffix, ", best");
  EXPECT_EQ(s.caption.secondary_separator, ";;;");
  EXPECT_TRUE(s.flip_aug);
  EXPECT_TRUE(s.random_crop);
  const SubsetConfig& r = d.subsets[1];
  EXPECT_EQ(r.image_dir, "/abs/reg");
  EXPECT_TRUE(r.is_reg);
  EXPECT_EQ(r.num_repeats, 1);
  EXPECT_FALSE(r.caption.shuffle_caption);
  EXPECT_EQ(r.caption.keep_tokens, 2);  // dataset level
  EXPECT_EQ(c.datasets[1].buckets.resolution, (Reso{1024, 1024}));
  EXPECT_EQ(c.datasets[1].batch_size, 1);
  EXPECT_EQ(c.datasets[1].subsets[0].caption_extension, ".caption");
}

TEST(DatasetToml, DefaultsAreKohyasWithTxtCaptions) {
  const DataConfig c = parse_dataset_toml("[[datasets]]\n[[datasets.subsets]]\nimage_dir = \"/x\"\n", "d.toml", "");
  const DatasetConfig& d = c.datasets.at(0);
  EXPECT_EQ(d.buckets.resolution, (Reso{1024, 1024}));
  EXPECT_TRUE(d.buckets.enable_bucket);
  EXPECT_EQ(d.buckets.min_bucket_reso, 256);
  EXPECT_EQ(d.buckets.max_bucket_reso, 2048);
  EXPECT_EQ(d.buckets.bucket_reso_steps, 64);
  EXPECT_EQ(d.subsets.at(0).caption_extension, ".txt");
  EXPECT_EQ(d.subsets.at(0).num_repeats, 1);
}

// kohya falls back to the training arguments for what the file leaves out (train_batch_size).
TEST(DatasetToml, CallerDefaultsFillOnlyMissingKeys) {
  DatasetConfig defaults;
  defaults.batch_size = 6;
  defaults.prior_loss_weight = 0.5;
  const DataConfig c = parse_dataset_toml(
      "[[datasets]]\n[[datasets.subsets]]\nimage_dir = \"/x\"\n"
      "[[datasets]]\nbatch_size = 2\nprior_loss_weight = 1.0\n[[datasets.subsets]]\nimage_dir = \"/y\"\n",
      "d.toml", "", defaults);
  EXPECT_EQ(c.datasets.at(0).batch_size, 6);
  EXPECT_DOUBLE_EQ(c.datasets.at(0).prior_loss_weight, 0.5);
  EXPECT_EQ(c.datasets.at(1).batch_size, 2);
  EXPECT_DOUBLE_EQ(c.datasets.at(1).prior_loss_weight, 1.0);
  EXPECT_EQ(c.datasets.at(0).subsets.size(), 1u);
}

TEST(DatasetToml, UnknownKeyIsAnErrorNamingItWithASuggestion) {
  const std::string e = error_of("[[datasets]]\n[[datasets.subsets]]\nimage_dir = \"/x\"\nshuffle_captions = true\n");
  EXPECT_NE(e.find("data.toml:4"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'shuffle_captions'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'shuffle_caption'"), std::string::npos) << e;
  EXPECT_NE(error_of("[general]\nfoo = 1\n[[datasets]]\n[[datasets.subsets]]\nimage_dir=\"/x\"\n").find("'foo'"),
            std::string::npos);
  EXPECT_NE(error_of("[generl]\n").find("unknown top-level key 'generl'"), std::string::npos);
}

TEST(DatasetToml, KeysAtTheWrongLevelAreRefused) {
  EXPECT_NE(error_of("[general]\nimage_dir = \"/x\"\n[[datasets]]\n[[datasets.subsets]]\nimage_dir=\"/y\"\n")
                .find("belongs in [[datasets.subsets]]"),
            std::string::npos);
  EXPECT_NE(error_of("[[datasets]]\n[[datasets.subsets]]\nimage_dir=\"/y\"\nresolution = 512\n")
                .find("belongs in [general] or [[datasets]]"),
            std::string::npos);
}

TEST(DatasetToml, TypesRangesAndMissingPartsAreChecked) {
  EXPECT_NE(error_of("[[datasets]]\n[[datasets.subsets]]\nimage_dir=\"/y\"\nnum_repeats = \"10\"\n")
                .find("'num_repeats' must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of("[[datasets]]\n[[datasets.subsets]]\nimage_dir=\"/y\"\ncaption_dropout_rate = 1.5\n")
                .find("[0, 1]"),
            std::string::npos);
  EXPECT_NE(error_of("[[datasets]]\n[[datasets.subsets]]\nnum_repeats = 2\n").find("image_dir is required"),
            std::string::npos);
  EXPECT_NE(error_of("[general]\n").find("no [[datasets]]"), std::string::npos);
  EXPECT_NE(error_of("[[datasets]]\nresolution = 512\n").find("no [[datasets.subsets]]"), std::string::npos);
  EXPECT_NE(error_of("[[datasets]\n").find("TOML syntax error"), std::string::npos);
  EXPECT_NE(error_of("[[datasets]]\nresolution = [512]\n[[datasets.subsets]]\nimage_dir=\"/y\"\n").find("[width, height]"),
            std::string::npos);
  // Bucket settings are validated with the file named.
  const std::string e =
      error_of("[[datasets]]\nmin_bucket_reso = 1024\nmax_bucket_reso = 512\n[[datasets.subsets]]\nimage_dir=\"/y\"\n");
  EXPECT_NE(e.find("data.toml"), std::string::npos) << e;
  EXPECT_NE(e.find("min_bucket_reso"), std::string::npos) << e;
}

TEST(DatasetToml, UnimplementedKohyaKeysPassOnlyWhenOff) {
  EXPECT_NO_THROW(parse_dataset_toml(
      "[general]\ncolor_aug = false\ncache_info = false\ntoken_warmup_step = 0\n[[datasets]]\n[[datasets.subsets]]\n"
      "image_dir=\"/y\"\n",
      "d.toml", ""));
  EXPECT_NE(error_of("[[datasets]]\n[[datasets.subsets]]\nimage_dir=\"/y\"\ncolor_aug = true\n")
                .find("kohya key 'color_aug' is not supported"),
            std::string::npos);
  EXPECT_NE(error_of("[[datasets]]\n[[datasets.subsets]]\nmetadata_file=\"/m.json\"\nimage_dir=\"/y\"\n")
                .find("'metadata_file'"),
            std::string::npos);
}

TEST(FolderConvention, RepeatsAndClassTokensFromTheName) {
  EXPECT_EQ(parse_repeat_folder("10_sks dog"), (std::pair<int, std::string>{10, "sks dog"}));
  EXPECT_EQ(parse_repeat_folder("5_a_b"), (std::pair<int, std::string>{5, "a_b"}));
  EXPECT_EQ(parse_repeat_folder("007_x"), (std::pair<int, std::string>{7, "x"}));
  EXPECT_EQ(parse_repeat_folder("3"), (std::pair<int, std::string>{3, ""}));
  EXPECT_EQ(parse_repeat_folder("abc_x").first, 0);
  EXPECT_EQ(parse_repeat_folder("_x").first, 0);
  EXPECT_EQ(parse_repeat_folder("1x_y").first, 0);
}

TEST(FolderConvention, TrainAndRegFoldersBecomeSubsets) {
  test::TempDir tmp;
  std::filesystem::create_directories(tmp / "train/10_sks dog");
  std::filesystem::create_directories(tmp / "train/2_sks cat");
  std::filesystem::create_directories(tmp / "train/abc_x");
  std::filesystem::create_directories(tmp / "train/.lorastudio-cache");
  std::filesystem::create_directories(tmp / "reg/1_dog");
  FolderSource src;
  src.train_dir = (tmp / "train").string();
  src.reg_dir = (tmp / "reg").string();
  src.defaults.batch_size = 3;
  src.subset_defaults.caption_extension = ".caption";
  Findings findings;
  const DataConfig c = folder_dataset(src, findings);
  ASSERT_EQ(c.datasets.size(), 1u);
  const auto& subs = c.datasets[0].subsets;
  ASSERT_EQ(subs.size(), 3u);
  EXPECT_EQ(subs[0].num_repeats, 10);
  EXPECT_EQ(subs[0].class_tokens, "sks dog");
  EXPECT_EQ(subs[1].num_repeats, 2);
  EXPECT_EQ(subs[1].class_tokens, "sks cat");
  EXPECT_TRUE(subs[2].is_reg);
  EXPECT_EQ(subs[2].class_tokens, "dog");
  EXPECT_EQ(subs[0].caption_extension, ".caption");
  EXPECT_EQ(c.datasets[0].batch_size, 3);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].code, "bad_repeats_folder");
  EXPECT_NE(findings[0].message.find("abc_x"), std::string::npos);
}

TEST(FolderConvention, NoUsableSubfolderIsAnError) {
  test::TempDir tmp;
  std::filesystem::create_directories(tmp / "train/photos");
  FolderSource src;
  src.train_dir = (tmp / "train").string();
  Findings findings;
  folder_dataset(src, findings);
  EXPECT_EQ(count_findings(findings, Severity::kError), 1u);
  EXPECT_THROW(require_no_errors(findings, src.train_dir), Error);
}

// Inputs fuzz/fuzz_dataset_toml found (tests/fixtures/fuzz/fuzz_dataset_toml): faults of toml++ 3.3
// itself, a false assertion on "[[[" (marzer/tomlplusplus#301) and __builtin_unreachable reached for
// a non-ASCII character after a value (#295), which the release library answers with a syntax
// error; a toml++ built otherwise (debug, or a compiler that uses the hint) would abort here.
TEST(DatasetTomlFuzz, TomlParserFaultInputsAreSyntaxErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"crash-29a5864403b213ae81ad574aa40ad43b7de67731", "data.toml:5: TOML syntax error: "},
      {"crash-3dadba9205833037acc75a60eeb7b51696352d3b", "data.toml:2: TOML syntax error: "},
  };
  for (const auto& [name, expected] : cases) {
    const std::string text =
        core::read_file(std::string(test::kSourceDir) + "/tests/fixtures/fuzz/fuzz_dataset_toml/" + name);
    EXPECT_EQ(error_of(text).rfind(expected, 0), 0u) << name << ": " << error_of(text);
  }
}

}  // namespace
}  // namespace ls::data
