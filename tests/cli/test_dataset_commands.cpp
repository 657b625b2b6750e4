// `lorastudio dataset make-synthetic | check | cache` end to end through the executable.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "support/support.h"

namespace {

namespace fs = std::filesystem;
using ls::test::run_lorastudio;

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

size_t count_files(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) n += it->is_regular_file() ? 1 : 0;
  return n;
}

TEST(DatasetCommands, SyntheticDatasetChecksCleanAsFolderAndToml) {
  ls::test::TempDir tmp;
  const std::string out = (tmp / "ds").string();
  auto r = run_lorastudio("dataset make-synthetic " + out + " --images 8 --reg-images 4 --repeats 3 --seed 5");
  ASSERT_EQ(r.exit_code, 0) << r.out;

  const std::string report = (tmp / "report.json").string();
  r = run_lorastudio("dataset check " + out + "/dataset.toml --json --report " + report + " --tokenizer " +
                     ls::test::kClipVocab);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  nlohmann::json j = read_json(report);
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(j["errors"].get<int>(), 0);
  // 8 images x 3 repeats = 24 train; 4 reg images x 1: passes add one repeat each until 24 -> 6 each.
  const auto& subsets = j["datasets"][0]["subsets"];
  ASSERT_EQ(subsets.size(), 2u);
  EXPECT_EQ(subsets[0]["images_per_epoch"].get<int>(), 24);
  EXPECT_EQ(subsets[1]["images_per_epoch"].get<int>(), 24);

  // The folder convention gives the same subsets (reg via --reg-dir).
  r = run_lorastudio("dataset check " + out + "/img --reg-dir " + out + "/reg --resolution 512 --batch-size 2 --report " +
                     report);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("steps per epoch"), std::string::npos) << r.out;
  const nlohmann::json k = read_json(report);
  EXPECT_EQ(k["steps_per_epoch"], j["steps_per_epoch"]);
  EXPECT_EQ(k["datasets"][0]["buckets"], j["datasets"][0]["buckets"]);
}

TEST(DatasetCommands, BrokenDatasetExitsNonZeroWithFindings) {
  ls::test::TempDir tmp;
  const fs::path d = tmp / "train/5_obj";
  fs::create_directories(d);
  std::ofstream(d / "zero.png").close();
  std::ofstream(d / "noise.jpg") << "this is not a jpeg";
  fs::create_directories(tmp / "train/abc_x");
  const std::string report = (tmp / "r.json").string();
  auto r = run_lorastudio("dataset check " + (tmp / "train").string() + " --report " + report);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("error:"), std::string::npos) << r.out;
  const nlohmann::json j = read_json(report);
  std::set<std::string> codes;
  for (const auto& f : j["findings"]) codes.insert(f["code"].get<std::string>());
  EXPECT_TRUE(codes.count("empty_file"));
  EXPECT_TRUE(codes.count("unreadable_image"));
  EXPECT_TRUE(codes.count("bad_repeats_folder"));
  EXPECT_TRUE(codes.count("no_train_images"));

  r = run_lorastudio("dataset check " + (tmp / "nothing.toml").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("nothing.toml"), std::string::npos) << r.out;
}

TEST(DatasetCommands, CacheEncodesOnceThenHits) {
  ls::test::TempDir tmp;
  const std::string config = std::string(ls::test::kSourceDir) + "/configs/sdxl_tiny.json";
  const std::string model = (tmp / "tiny.safetensors").string();
  auto r = run_lorastudio("debug make-model --config " + config + " --seed 1 --output " + model);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string out = (tmp / "ds").string();
  r = run_lorastudio("dataset make-synthetic " + out + " --images 5 --min-side 64 --max-side 128 --resolution 128");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string args = "dataset cache " + out + "/dataset.toml --model " + model + " --cache-dir " +
                           (tmp / "cache").string();
  r = run_lorastudio(args);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("0 cached, 5 encoded"), std::string::npos) << r.out;
  EXPECT_EQ(count_files(tmp / "cache/latents"), 5u);
  r = run_lorastudio(args);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("5 cached, 0 encoded"), std::string::npos) << r.out;
  // One JSON line per run in the cache's log.
  std::ifstream log(tmp / "cache/cache_log.jsonl");
  std::string line;
  std::vector<nlohmann::json> runs;
  while (std::getline(log, line)) runs.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0]["encoded"].get<int>(), 5);
  EXPECT_EQ(runs[1]["hits"].get<int>(), 5);
  // A cache entry is a latent of the tiny VAE: 4 channels at 1/8 of the bucket (the tiny VAE has
  // the full model's 3 downsamplings).
  for (const auto& e : fs::directory_iterator(tmp / "cache/latents")) {
    ls::io::SafetensorsReader reader(e.path());
    const auto* info = reader.find("latents");
    ASSERT_NE(info, nullptr);
    ASSERT_EQ(info->shape.size(), 3u);
    EXPECT_EQ(info->shape[0], 4);
  }
}

}  // namespace
