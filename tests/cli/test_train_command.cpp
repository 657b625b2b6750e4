// `lorastudio train` on the command line: kohya flag spellings, notes for ignored kohya keys,
// suggestions for misspelt ones, one-line errors with a non-zero exit code, the effective config.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "support/support.h"

namespace ls {
namespace {

TEST(TrainCommand, MisspeltFlagIsNamedWithASuggestion) {
  const auto r = test::run_lorastudio("train --learning_rat 1e-4");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("did you mean"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("learning_rate"), std::string::npos) << r.out;
}

TEST(TrainCommand, IgnoredKohyaFlagGivesANoteAndMissingModelIsOneLine) {
  const auto r = test::run_lorastudio("train --xformers --max_data_loader_n_workers 4 --output_dir /tmp/x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("note: xformers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("note: max_data_loader_n_workers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("error: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pretrained_model_name_or_path"), std::string::npos) << r.out;
}

TEST(TrainCommand, RefusedKohyaFlagUnlessOff) {
  const auto on = test::run_lorastudio("train --v2");
  EXPECT_NE(on.exit_code, 0);
  EXPECT_NE(on.out.find("v2"), std::string::npos) << on.out;
  EXPECT_NE(on.out.find("not supported"), std::string::npos) << on.out;
}

TEST(TrainCommand, ConfigFileFlagsOverrideAndBadConfigIsNamed) {
  test::TempDir dir;
  core::write_file_atomic(dir / "t.toml", "[model]\nnetwork_dim = 8\nlearning_rate = \"fast\"\n");
  const auto r = test::run_lorastudio("train " + (dir / "t.toml").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("t.toml:3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("learning_rate"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ls
