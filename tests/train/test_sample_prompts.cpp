// kohya sample-prompt files (txt options, json list, defaults, sampler names, errors) and the
// trainer's sample images: made at the asked-for epochs, carrying their parameters, and without
// changing the training (the LoRA file is byte-identical with and without sampling).
#include <filesystem>

#include "core/atomic_file.h"
#include "data/synthetic.h"
#include "io/png_text.h"
#include "models/checkpoint.h"
#include "support/support.h"
#include "support/training_data.h"
#include "train/sample_prompts.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace ls {
namespace {

TEST(SamplePrompts, KohyaTextLinesWithOptionsAndDefaults) {
  test::TempDir dir;
  const std::string path = (dir.path() / "prompts.txt").string();
  core::write_file_atomic(path,
                          "# a comment\n"
                          "photo of sks dog, red collar --n blurry, lowres --w 1000 --h 768 --d 42 --l 5.5 --s 12 --ss euler_a\n"
                          "\n"
                          "a cat\n");
  const auto r = train::read_sample_prompts(path, "ddim", 100);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].prompt, "photo of sks dog, red collar");
  EXPECT_EQ(r[0].negative_prompt, "blurry, lowres");
  EXPECT_EQ(r[0].width, 960);  // rounded down to a multiple of 64
  EXPECT_EQ(r[0].height, 768);
  EXPECT_EQ(r[0].seed, 42);
  EXPECT_EQ(r[0].cfg_scale, 5.5);
  EXPECT_EQ(r[0].steps, 12);
  EXPECT_EQ(r[0].sampler, "Euler a");
  // kohya's defaults; the seed follows the training seed and the prompt's index.
  EXPECT_EQ(r[1].prompt, "a cat");
  EXPECT_EQ(r[1].width, 512);
  EXPECT_EQ(r[1].height, 512);
  EXPECT_EQ(r[1].steps, 30);
  EXPECT_EQ(r[1].cfg_scale, 7.5);
  EXPECT_EQ(r[1].sampler, "DDIM");
  EXPECT_EQ(r[1].seed, 101);
}

TEST(SamplePrompts, JsonAndTomlListsAndErrors) {
  test::TempDir dir;
  const std::string json = (dir.path() / "p.json").string();
  core::write_file_atomic(json, R"([{"prompt": "a dog", "width": 640, "sample_steps": 8, "seed": 3, "scale": 6}])");
  const auto r = train::read_sample_prompts(json, "k_dpm_2", 0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].width, 640);
  EXPECT_EQ(r[0].steps, 8);
  EXPECT_EQ(r[0].seed, 3);
  EXPECT_EQ(r[0].cfg_scale, 6);
  EXPECT_EQ(r[0].sampler, "DPM2");

  const std::string toml = (dir.path() / "p.toml").string();
  core::write_file_atomic(toml, "[prompt]\nnegative_prompt = \"blurry\"\nsample_steps = 5\n"
                                "[[prompt.subset]]\nprompt = \"a dog\"\nseed = 1\n"
                                "[[prompt.subset]]\nprompt = \"a cat\"\nsample_steps = 7\nwidth = 768\n");
  const auto t = train::read_sample_prompts(toml, "euler", 50);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].prompt, "a dog");
  EXPECT_EQ(t[0].negative_prompt, "blurry");
  EXPECT_EQ(t[0].steps, 5);
  EXPECT_EQ(t[0].seed, 1);
  EXPECT_EQ(t[1].prompt, "a cat");
  EXPECT_EQ(t[1].negative_prompt, "blurry");
  EXPECT_EQ(t[1].steps, 7);
  EXPECT_EQ(t[1].width, 768);
  EXPECT_EQ(t[1].seed, 51);

  const std::string bad = (dir.path() / "bad.txt").string();
  core::write_file_atomic(bad, "ok\na dog --q 3\n");
  const std::string e = test::error_of([&] { train::read_sample_prompts(bad, "ddim", 0); });
  EXPECT_NE(e.find(bad + ":2"), std::string::npos) << e;
  EXPECT_NE(e.find("'q'"), std::string::npos) << e;
  EXPECT_NE(test::error_of([&] { train::read_sample_prompts(bad, "pndm", 0); }).find("pndm"), std::string::npos);
}

// crash-7933...: "9 --sampler" read as a request with an empty sampler, which the sampler refuses
// only at the first sample epoch, hours into training. Every request is checked as it is read.
TEST(SamplePrompts, RequestsTheSamplerRefusesFailWhenRead) {
  const std::string crash = core::read_file(std::string(test::kSourceDir) +
                                            "/tests/fixtures/fuzz/fuzz_sample_prompts/crash-7933b9fd9624bdacbcb2ba503fc4897afb38ea11");
  const auto error = [](const std::string& text, const std::string& path) {
    return test::error_of([&] { train::parse_sample_prompts(text, path, "euler_a", 0); });
  };
  std::string e = error(crash, "p.txt");
  EXPECT_NE(e.find("p.txt:1: sampler \"\" is unknown"), std::string::npos) << e;
  e = error("ok\nb --s 0\n", "p.txt");
  EXPECT_NE(e.find("p.txt:2: sample: steps 0 is out of range"), std::string::npos) << e;
  e = error(R"([{"prompt": "a"}, {"prompt": "b", "sampler": "Euler q"}])", "p.json");
  EXPECT_NE(e.find("p.json: prompt 2: sampler \"Euler q\" is unknown"), std::string::npos) << e;
  e = error("[prompt]\nsample_steps = 1001\n[[prompt.subset]]\nprompt = \"a\"\n", "p.toml");
  EXPECT_NE(e.find("p.toml: prompt 1: sample: steps 1001"), std::string::npos) << e;
  const auto r = train::parse_sample_prompts("a --sampler Euler a --schedule_type Karras --s 1000\n", "p.txt", "ddim", 0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].sampler, "Euler a");
  EXPECT_EQ(r[0].schedule_type, "Karras");
}

TEST(SamplePrompts, TrainerSamplesWithoutChangingTheTraining) {
  torch::set_num_threads(1);
  test::TempDir dir;
  const std::string model = test::write_tiny_checkpoint(dir.path() / "tiny.safetensors");
  data::SyntheticOptions o;
  o.images = 4;
  o.repeats = 1;
  o.resolution = 64;
  o.min_side = 80;
  o.max_side = 96;
  o.batch_size = 2;
  const std::string toml = data::make_synthetic_dataset((dir.path() / "data").string(), o).config_toml;
  const std::string prompts = (dir.path() / "prompts.txt").string();
  core::write_file_atomic(prompts, "a red cube --w 64 --h 64 --s 3 --d 9\n");

  const auto run = [&](const std::string& out, bool with_samples) {
    train::TrainConfig c;
    c.pretrained_model_name_or_path = model;
    c.dataset_config = toml;
    c.tokenizer = test::kClipVocab;
    c.output_dir = out;
    c.output_name = "tiny";
    c.network_dim = 4;
    c.learning_rate = 1e-3;
    c.seed = 11;
    c.max_train_epochs = 2;
    c.cache_latents = true;  // the VAE is freed for training but kept for the samples
    if (with_samples) {
      c.sample_prompts = prompts;
      c.sample_every_n_epochs = 1;
      c.sample_sampler = "euler";
    }
    train::run_training(c);
  };
  const std::string with = (dir.path() / "with").string(), without = (dir.path() / "without").string();
  run(with, true);
  run(without, false);
  EXPECT_EQ(core::read_file(with + "/tiny.safetensors"), core::read_file(without + "/tiny.safetensors"));
  for (const char* name : {"tiny_e000001_00_9.png", "tiny_e000002_00_9.png"}) {
    const std::string png = with + "/sample/" + name;
    ASSERT_TRUE(fs::is_regular_file(png)) << png;
    const std::string text = io::read_png_text_file(png).at("parameters");
    EXPECT_NE(text.find("a red cube\nSteps: 3, Sampler: Euler, CFG scale: 7.5, Seed: 9, Size: 64x64"), std::string::npos)
        << text;
  }
  // The LoRA changed between the two epochs, and the images show it.
  EXPECT_NE(core::read_file(with + "/sample/tiny_e000001_00_9.png"), core::read_file(with + "/sample/tiny_e000002_00_9.png"));
}

}  // namespace
}  // namespace ls
