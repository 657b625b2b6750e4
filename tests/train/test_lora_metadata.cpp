// train/lora_metadata + train/dataset_metadata: kohya's metadata keys, values and JSON shapes.
// The expected texts are kohya-shaped examples written from train_network.py (~1000-1225) and
// train_util.py (set_tag_frequency, make_buckets): the dict keys in kohya's order, json.dumps'
// separators, Python's str() of each value; the numbers are worked out by hand below. A real
// tiny run checks the key set against kohya's list and that a resumed run keeps its stamp.
#include <cstdlib>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/sha256.h"
#include "data/dataset.h"
#include "data/dataset_config.h"
#include "io/image.h"
#include "io/python_text.h"
#include "io/safetensors.h"
#include "support/kohya_metadata_keys.h"
#include "support/support.h"
#include "support/training_data.h"
#include "train/dataset_metadata.h"
#include "train/lora_metadata.h"
#include "train/train_state.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace ls {
namespace {

void lm_image(const fs::path& path, int w, int h, const std::string& caption = "") {
  fs::create_directories(path.parent_path());
  io::write_image(path.string(), cv::Mat(h, w, CV_8UC3, cv::Scalar(40, 90, 200)));
  if (!caption.empty()) core::write_file_atomic(fs::path(path).replace_extension(".txt"), caption + "\n");
}

// Three train images (buckets worked out for resolution 128, steps 64, buckets 64..256: the
// predefined ones are 64x192, 64x256, 128x128, 192x64, 256x64; 192x128 (ratio 1.5) goes to
// 128x128 with |1 - 1.5| = 0.5, the other two fit exactly), one without a caption file; one reg
// image.
void lm_write_cat_folders(const fs::path& root) {
  lm_image(root / "a/3_cat/0000.png", 192, 128, "Cat, black fur , , Sitting");
  lm_image(root / "a/3_cat/0001.png", 128, 128, "cat,BLACK FUR,\xc3\x89T\xc3\x89");  // ÉTÉ
  lm_image(root / "a/3_cat/0002.png", 256, 64);  // no caption: the class tokens "cat"
  lm_image(root / "reg/1_cat/0000.png", 128, 128, "Cat, photo");
}

std::vector<data::DatasetIndex> lm_index(const data::DataConfig& config) {
  data::Findings findings;
  return data::index_datasets(config, findings);
}

// The first dataset's expected objects: kohya's keys in kohya's order.
// Repeats: train 3 x 3 = 9; the one reg image is balanced up to 9 repeats (kohya: one more per
// pass until the train count is reached). 128x128: 2 x 3 + 9 = 15, 256x64: 3. Mean |ar error| over
// the 3 train images then the reg one: 0.5 / 4 = 0.125.
constexpr const char* kCatTags =
    R"({"3_cat": {"cat": 3, "black fur": 2, "sitting": 1, "\u00e9t\u00e9": 1}, "1_cat": {"cat": 1, "photo": 1}})";
constexpr const char* kCatBuckets =
    R"({"buckets": {"0": {"resolution": [128, 128], "count": 15}, "1": {"resolution": [256, 64], "count": 3}}, )"
    R"("mean_img_ar_error": 0.125})";

constexpr const char* kCatDatasetToml = R"([general]
caption_extension = ".txt"
[[datasets]]
resolution = 128
batch_size = 2
enable_bucket = true
min_bucket_reso = 64
max_bucket_reso = 256
bucket_reso_steps = 64
  [[datasets.subsets]]
  image_dir = "a/3_cat"
  num_repeats = 3
  class_tokens = "cat"
  shuffle_caption = true
  keep_tokens = 1
  [[datasets.subsets]]
  image_dir = "reg/1_cat"
  is_reg = true
  class_tokens = "cat"
[[datasets]]
resolution = 128
batch_size = 1
enable_bucket = false
  [[datasets.subsets]]
  image_dir = "b/3_cat"
  num_repeats = 2
  caption_prefix = "best"
  [[datasets.subsets]]
  image_dir = "a/3_cat"
  [[datasets.subsets]]
  image_dir = "empty/1_none"
)";

TEST(LoraMetadataTags, KohyaSplitStripLowerPerFolder) {
  test::TempDir dir;
  lm_write_cat_folders(dir.path());
  const auto datasets = lm_index(data::parse_dataset_toml(kCatDatasetToml, "t.toml", dir.path().string()));
  ASSERT_EQ(datasets.size(), 2u);
  EXPECT_EQ(io::python_json_dumps(train::tag_frequency(datasets[0])), kCatTags);
  // b/3_cat and a/3_cat share the name 3_cat: one entry, counts added (kohya's dict by base
  // name; this a/3_cat subset has no class tokens, so its uncaptioned image adds nothing); the
  // existing folder without images has an empty one.
  fs::create_directories(dir / "empty/1_none");
  lm_image(dir / "b/3_cat/0000.png", 128, 128, "Dog");
  const auto again = lm_index(data::parse_dataset_toml(kCatDatasetToml, "t.toml", dir.path().string()));
  EXPECT_EQ(io::python_json_dumps(train::tag_frequency(again[1])),
            R"({"3_cat": {"dog": 1, "cat": 2, "black fur": 2, "sitting": 1, "\u00e9t\u00e9": 1}, "1_none": {}})");
}

TEST(LoraMetadataBuckets, CountsWithRepeatsAndNumpyMean) {
  test::TempDir dir;
  lm_write_cat_folders(dir.path());
  const auto datasets = lm_index(data::parse_dataset_toml(kCatDatasetToml, "t.toml", dir.path().string()));
  EXPECT_EQ(io::python_json_dumps(train::bucket_info(datasets[0])), kCatBuckets);
  EXPECT_TRUE(train::bucket_info(datasets[1]).is_null());  // no bucketing: kohya's None

  // numpy's pairwise sum, not a running one: for 9 values, 8 partial sums paired up, then the
  // ninth. These values make the two orders differ (1e16 + 1 rounds the 1 away).
  const std::vector<double> v{1e16, 1, 1, 1, -1e16, 1, 1, 1, 3};
  const double pairwise = (((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))) + v[8];
  double running = 0;
  for (double x : v) running += x;
  ASSERT_NE(pairwise, running);
  EXPECT_EQ(train::numpy_mean(v), pairwise / 9);
  EXPECT_EQ(train::numpy_mean({0.5, 0.25}), 0.375);
}

TEST(LoraMetadataDatasets, DatasetConfigWritesSsDatasetsAsKohya) {
  test::TempDir dir;
  lm_write_cat_folders(dir.path());
  fs::create_directories(dir / "empty/1_none");
  lm_image(dir / "b/3_cat/0000.png", 128, 128, "Dog");
  const auto datasets = lm_index(data::parse_dataset_toml(kCatDatasetToml, "t.toml", dir.path().string()));
  train::TrainConfig c;
  c.dataset_config = (dir / "t.toml").string();
  const auto m = train::dataset_lora_metadata(c, datasets, 1);
  // kohya writes these three only, and none of the folder-mode keys.
  std::set<std::string> keys;
  for (const auto& [k, v] : m) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"ss_datasets", "ss_tag_frequency", "ss_dataset_dirs"}));

  const std::string subset_keys = R"("color_aug": false, "flip_aug": false, "random_crop": false, )";
  const std::string first =
      std::string(R"({"is_dreambooth": true, "batch_size_per_device": 2, "num_train_images": 9, "num_reg_images": 1, )") +
      R"("resolution": [128, 128], "enable_bucket": true, "min_bucket_reso": 64, "max_bucket_reso": 256, "tag_frequency": )" +
      kCatTags + R"(, "bucket_info": )" + kCatBuckets + R"(, "resize_interpolation": null, "subsets": [)" +
      R"({"img_count": 3, "num_repeats": 3, )" + subset_keys +
      R"("shuffle_caption": true, "keep_tokens": 1, "keep_tokens_separator": "", "secondary_separator": null, )"
      R"("enable_wildcard": false, "caption_prefix": null, "caption_suffix": null, "resize_interpolation": null, )"
      R"("image_dir": "3_cat", "class_tokens": "cat", "is_reg": false}, )"
      R"({"img_count": 1, "num_repeats": 1, )" + subset_keys +
      R"("shuffle_caption": false, "keep_tokens": 0, "keep_tokens_separator": "", "secondary_separator": null, )"
      R"("enable_wildcard": false, "caption_prefix": null, "caption_suffix": null, "resize_interpolation": null, )"
      R"("image_dir": "1_cat", "class_tokens": "cat", "is_reg": true}]})";
  const nlohmann::ordered_json all = nlohmann::ordered_json::parse(m.at("ss_datasets"));
  ASSERT_TRUE(all.is_array());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(io::python_json_dumps(all[0]), first);
  // The second: no bucketing (kohya's None limits and bucket_info), a caption_prefix, 2 x 1 + 1 x 3
  // train images; the empty folder is no subset; the shapes of the first.
  const nlohmann::ordered_json& second = all[1];
  EXPECT_EQ(second["num_train_images"], 5);
  EXPECT_TRUE(second["min_bucket_reso"].is_null() && second["max_bucket_reso"].is_null() && second["bucket_info"].is_null());
  ASSERT_EQ(second["subsets"].size(), 2u);
  EXPECT_EQ(second["subsets"][0]["caption_prefix"], "best");
  EXPECT_TRUE(second["subsets"][0]["class_tokens"].is_null());
  std::vector<std::string> first_keys, second_keys;
  for (const auto& [k, v] : all[0].items()) first_keys.push_back(k);
  for (const auto& [k, v] : second.items()) second_keys.push_back(k);
  EXPECT_EQ(first_keys, second_keys);
  // The top level: tags merged (the first dataset naming 3_cat wins), the train folders with a
  // repeated name numbered as kohya does, reg folders left out.
  EXPECT_EQ(m.at("ss_tag_frequency"), std::string(kCatTags).substr(0, std::string(kCatTags).size() - 1) + R"(, "1_none": {}})");
  EXPECT_EQ(m.at("ss_dataset_dirs"), R"x({"3_cat": {"n_repeats": 3, "img_count": 3}, "3_cat (2)": {"n_repeats": 2, )x"
                                      R"x("img_count": 1}, "3_cat (3)": {"n_repeats": 1, "img_count": 3}})x");
}

TEST(LoraMetadataFolder, FolderModeWritesKohyasTopLevelKeys) {
  test::TempDir dir;
  lm_write_cat_folders(dir.path());
  fs::create_directories(dir / "a/no_repeats");  // skipped, as kohya skips it
  data::FolderSource src;
  src.train_dir = (dir / "a").string();
  src.reg_dir = (dir / "reg").string();
  src.defaults.batch_size = 2;
  src.defaults.buckets = {{128, 128}, true, 64, 256, 64, false};
  data::Findings findings;
  const auto datasets = data::index_datasets(data::folder_dataset(src, findings), findings);
  train::TrainConfig c;
  c.train_data_dir = src.train_dir;
  c.reg_data_dir = src.reg_dir;
  c.resolution = {128, 128};
  c.train_batch_size = 2;
  c.gradient_accumulation_steps = 4;
  const auto m = train::dataset_lora_metadata(c, datasets, 3);
  const std::map<std::string, std::string> expected{
      {"ss_batch_size_per_device", "2"},
      {"ss_total_batch_size", "24"},  // 2 per device x 3 ranks x 4 accumulation
      {"ss_resolution", "(128, 128)"},
      {"ss_color_aug", "False"},
      {"ss_flip_aug", "False"},
      {"ss_random_crop", "False"},
      {"ss_shuffle_caption", "False"},
      {"ss_enable_bucket", "True"},
      {"ss_bucket_no_upscale", "False"},
      {"ss_min_bucket_reso", "64"},
      {"ss_max_bucket_reso", "256"},
      {"ss_keep_tokens", "0"},
      {"ss_dataset_dirs", R"({"3_cat": {"n_repeats": 3, "img_count": 3}})"},
      {"ss_reg_dataset_dirs", R"({"1_cat": {"n_repeats": 1, "img_count": 1}})"},
      {"ss_tag_frequency", kCatTags},
      {"ss_bucket_info", kCatBuckets},
  };
  EXPECT_EQ(m, expected);
}

TEST(LoraMetadataOptimizer, KohyasClassPathAndArgs) {
  train::TrainConfig c;
  EXPECT_EQ(train::kohya_optimizer_name(c), "torch.optim.adamw.AdamW");
  c.optimizer_args = {"weight_decay=1e-2 betas=0.9,0.99"};
  EXPECT_EQ(train::kohya_optimizer_name(c), "torch.optim.adamw.AdamW(weight_decay=0.01,betas=(0.9, 0.99))");
  c.optimizer_type = "Adafactor";
  c.optimizer_args = {};
  EXPECT_EQ(train::kohya_optimizer_name(c), "transformers.optimization.Adafactor(relative_step=True)");
  c.optimizer_args = {"scale_parameter=False", "relative_step=False", "warmup_init=False"};
  EXPECT_EQ(train::kohya_optimizer_name(c),
            "transformers.optimization.Adafactor(scale_parameter=False,relative_step=False,warmup_init=False)");
}


class LoraMetadataRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    dir_ = new test::TempDir();
    test::write_tiny_checkpoint(*dir_ / "tiny.safetensors");
    toml_ = test::write_training_dataset(*dir_ / "data", 2);
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override { ::unsetenv("SOURCE_DATE_EPOCH"); }
  void TearDown() override { ::unsetenv("SOURCE_DATE_EPOCH"); }

  static train::TrainConfig config(const fs::path& out) {
    train::TrainConfig c;
    c.pretrained_model_name_or_path = (*dir_ / "tiny.safetensors").string();
    c.dataset_config = toml_;
    c.tokenizer = test::kClipVocab;
    c.output_dir = out.string();
    c.output_name = "tiny";
    c.learning_rate = 1e-3;
    c.seed = 3;
    c.max_train_steps = 2;
    return c;
  }
  static std::map<std::string, std::string> metadata(const std::string& file) {
    return io::SafetensorsReader(file).metadata();
  }

  static test::TempDir* dir_;
  static std::string toml_;
};
test::TempDir* LoraMetadataRun::dir_ = nullptr;
std::string LoraMetadataRun::toml_;

TEST_F(LoraMetadataRun, KohyasKeySetValuesAndLoraInfo) {
  test::TempDir out, other, changed;
  const auto r = train::run_training(config(out.path()));
  const auto m = metadata(r.final_lora);
  std::set<std::string> ss;
  for (const auto& [k, v] : m)
    if (k.rfind("ss_", 0) == 0) ss.insert(k);
  std::set<std::string> expected(std::begin(test::kKohyaAlwaysKeys), std::end(test::kKohyaAlwaysKeys));
  expected.insert({"ss_datasets", "ss_tag_frequency", "ss_dataset_dirs"});  // a dataset_config run
  EXPECT_EQ(ss, expected);

  const std::string model = (*dir_ / "tiny.safetensors").string();
  EXPECT_EQ(m.at("ss_sd_model_name"), "tiny.safetensors");
  // kohya's model_hash: 8 hex of the SHA-256 of the 64 KiB at 1 MiB; calculate_sha256: the file's.
  const std::string bytes = core::read_file(model);
  const std::string at_1mib = bytes.size() > 0x100000 ? bytes.substr(0x100000, 0x10000) : "";
  EXPECT_EQ(m.at("ss_sd_model_hash"), core::sha256_hex(at_1mib).substr(0, 8));
  EXPECT_EQ(m.at("ss_new_sd_model_hash"), core::sha256_hex(bytes));
  EXPECT_EQ(m.at("ss_optimizer"), "torch.optim.adamw.AdamW");
  EXPECT_EQ(m.at("ss_learning_rate"), "0.001");
  EXPECT_EQ(m.at("ss_max_grad_norm"), "1.0");
  EXPECT_EQ(m.at("ss_network_dropout"), "None");
  EXPECT_EQ(m.at("ss_loss_type"), "l2");
  EXPECT_EQ(m.at("ss_training_started_at"), "0.0");  // no SOURCE_DATE_EPOCH: fixed
  EXPECT_EQ(m.at("ss_training_finished_at"), "0.0");
  const nlohmann::json datasets = nlohmann::json::parse(m.at("ss_datasets"));
  ASSERT_EQ(datasets.size(), 1u);
  EXPECT_EQ(datasets[0]["tag_frequency"], nlohmann::json::parse(m.at("ss_tag_frequency")));
  // The train folder (2 repeats of class lsshape: 2_lsshape) and the reg folder; each of the 6
  // train captions starts with the class token.
  ASSERT_EQ(datasets[0]["tag_frequency"].size(), 2u);
  EXPECT_EQ(datasets[0]["tag_frequency"]["2_lsshape"]["lsshape"], 6);

  // The same training elsewhere: the same session id; another learning rate: another one.
  const auto same = metadata(train::run_training(config(other.path())).final_lora);
  EXPECT_EQ(same.at("ss_session_id"), m.at("ss_session_id"));
  train::TrainConfig lr = config(changed.path());
  lr.learning_rate = 2e-3;
  EXPECT_NE(metadata(train::run_training(lr).final_lora).at("ss_session_id"), m.at("ss_session_id"));

  // `lorastudio lora info` lists every key.
  const test::CommandResult info = test::run_lorastudio("lora info " + r.final_lora + " --json");
  ASSERT_EQ(info.exit_code, 0) << info.out;
  const nlohmann::json j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["metadata"]["ss_tag_frequency"], m.at("ss_tag_frequency"));
  EXPECT_EQ(j["metadata"]["ss_datasets"], m.at("ss_datasets"));
}

TEST_F(LoraMetadataRun, ResumeKeepsTheStampAndOlderStatesStillResume) {
  test::TempDir out;
  ::setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  train::TrainHooks stop;
  stop.stop_after_step = [](int64_t step) { return step == 1; };
  const auto first = train::run_training(config(out.path()), stop);
  ASSERT_TRUE(first.interrupted);
  const train::TrainStateInfo saved = train::read_train_state_info(first.last_state);
  ASSERT_TRUE(saved.stamp.has_value());
  EXPECT_EQ(saved.stamp->started_at, 1700000000.0);

  // Resumed without the variable: the state's stamp is written.
  ::unsetenv("SOURCE_DATE_EPOCH");
  train::TrainConfig resume = config(out.path());
  resume.resume = first.last_state;
  const auto m = metadata(train::run_training(resume).final_lora);
  EXPECT_EQ(m.at("ss_training_started_at"), "1700000000.0");
  EXPECT_EQ(m.at("ss_training_finished_at"), "1700000000.0");
  EXPECT_EQ(m.at("ss_session_id"), std::to_string(saved.stamp->session_id));

  // A format-2 state written before stamps existed reads and resumes; the session id is made
  // again from the same training, so it is the same.
  nlohmann::json j = nlohmann::json::parse(core::read_file(fs::path(first.last_state) / "state.json"));
  j.erase("session_id");
  j.erase("training_started_at");
  core::write_file_atomic(fs::path(first.last_state) / "state.json", j.dump(2));
  EXPECT_FALSE(train::read_train_state_info(first.last_state).stamp.has_value());
  const auto old = metadata(train::run_training(resume).final_lora);
  EXPECT_EQ(old.at("ss_session_id"), std::to_string(saved.stamp->session_id));
  EXPECT_EQ(old.at("ss_training_started_at"), "0.0");
}

}  // namespace
}  // namespace ls
