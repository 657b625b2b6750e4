// sample (PNG parameters, --from-png bit-exact) and sheet (cells, reuse by content hash, grid,
// manifest) through the executable, on the tiny model with two trained-looking LoRA "epochs".
#include <filesystem>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "io/image.h"
#include "io/png_text.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "lora/network.h"
#include "models/checkpoint.h"
#include "support/support.h"

namespace {

namespace fs = std::filesystem;
using ls::test::run_lorastudio;

class SampleCommands : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ls::test::TempDir();
    const std::string config = std::string(ls::test::kSourceDir) + "/configs/sdxl_tiny.json";
    model_ = path("tiny.safetensors");
    auto r = run_lorastudio("debug make-model --config " + config + " --seed 5 --output " + model_);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    fs::create_directories(path("loras"));
    make_lora(1, path("loras/dog-000001.safetensors"));
    make_lora(2, path("loras/dog-000002.safetensors"));
    make_lora(3, path("final/dog.safetensors"), {{"ss_epoch", "3"}});
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string path(const std::string& name) { return (*dir_ / name).string(); }

  static void make_lora(int64_t seed, const std::string& file, std::map<std::string, std::string> extra = {}) {
    auto model = ls::models::load_sdxl_checkpoint(model_, "", {true, true, false}, torch::kCPU, torch::kFloat);
    ls::lora::LoraNetworkOptions o;
    o.rank = 4;
    o.alpha = 4;
    torch::manual_seed(seed);
    ls::lora::LoraNetwork net(model, o);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : net->parameters()) p.normal_(0, 0.2);
    }
    auto meta = ls::lora::network_metadata(o, "test", 64, 64);
    for (const auto& [k, v] : extra) meta[k] = v;
    fs::create_directories(fs::path(file).parent_path());
    ls::lora::save_lora(file, *net, torch::kFloat, meta);
  }

  static std::string common() {
    return " --model " + model_ + " --tokenizer " + std::string(ls::test::kClipVocab) + " --width 64 --height 64 -q";
  }

  static inline ls::test::TempDir* dir_ = nullptr;
  static inline std::string model_;
};

bool same_pixels(const std::string& a, const std::string& b) {
  const cv::Mat x = ls::io::read_image_rgb(a), y = ls::io::read_image_rgb(b);
  return x.size() == y.size() && cv::countNonZero(x.reshape(1) != y.reshape(1)) == 0;
}

std::string parameters_of(const std::string& png) { return ls::io::read_png_text_file(png).at("parameters"); }

TEST_F(SampleCommands, PngCarriesParametersAndFromPngIsBitExact) {
  const std::string a = path("a.png"), b = path("b.png");
  auto r = run_lorastudio("sample" + common() + " --prompt \"a (red:1.2) cube, [dark] sky\" --negative blurry --steps 4"
                          " --sampler \"Euler a\" --seed 7 --lora " + path("loras/dog-000001.safetensors") + ":0.8 -o " + a);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string text = parameters_of(a);
  EXPECT_NE(text.find("a (red:1.2) cube, [dark] sky <lora:dog-000001:0.8>\nNegative prompt: blurry\nSteps: 4, "
                      "Sampler: Euler a, CFG scale: 7, Seed: 7, Size: 64x64"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Lora hashes: \"dog-000001: "), std::string::npos) << text;

  // Only the PNG (and the tokenizer, which is not an image setting) on the command line.
  r = run_lorastudio("sample --tokenizer " + std::string(ls::test::kClipVocab) + " -q --from-png " + a + " -o " + b);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(same_pixels(a, b));
  EXPECT_EQ(parameters_of(b), text);

  // The image depends on what the text says: another seed, or the LoRA off, changes it.
  r = run_lorastudio("sample --tokenizer " + std::string(ls::test::kClipVocab) + " -q --from-png " + a + " --seed 8 -o " +
                     path("c.png"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_FALSE(same_pixels(a, path("c.png")));
  r = run_lorastudio("sample" + common() + " --prompt \"a (red:1.2) cube, [dark] sky\" --negative blurry --steps 4"
                     " --sampler \"Euler a\" --seed 7 -o " + path("d.png"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_FALSE(same_pixels(a, path("d.png")));
}

TEST_F(SampleCommands, NoPathsKeepsFoldersOutAndReRendersWithModelAndLoraDir) {
  const std::string a = path("private.png"), b = path("private-again.png");
  auto r = run_lorastudio("sample" + common() + " --prompt cube --steps 3 --sampler Heun --seed 3 --no-paths --lora " +
                          path("loras/dog-000002.safetensors") + ":0.6 -o " + a);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string text = parameters_of(a);
  EXPECT_EQ(text.find(dir_->path().string()), std::string::npos) << text;
  EXPECT_EQ(text.find("Model path"), std::string::npos) << text;
  EXPECT_NE(text.find("cube <lora:dog-000002:0.6>"), std::string::npos) << text;
  EXPECT_NE(text.find("Lora hashes: \"dog-000002: "), std::string::npos) << text;

  const std::string vocab = " --tokenizer " + std::string(ls::test::kClipVocab) + " -q";
  r = run_lorastudio("sample" + vocab + " --from-png " + a + " -o " + b);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("pass --model"), std::string::npos) << r.out;
  r = run_lorastudio("sample" + vocab + " --from-png " + a + " --model " + model_ + " -o " + b);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("--lora-dir"), std::string::npos) << r.out;
  r = run_lorastudio("sample" + vocab + " --from-png " + a + " --model " + model_ + " --lora-dir " + path("loras") +
                     " --no-paths -o " + b);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(same_pixels(a, b));
  EXPECT_EQ(parameters_of(b), text);
}

TEST_F(SampleCommands, BatchTakesConsecutiveSeedsAndNamesFilesLikeA1111) {
  auto r = run_lorastudio("sample" + common() + " --prompt cube --steps 2 --sampler DDIM --seed 40 --batch 2 -o " +
                          path("batch"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(fs::is_regular_file(path("batch/00000-40.png"))) << r.out;
  EXPECT_TRUE(fs::is_regular_file(path("batch/00001-41.png"))) << r.out;
  EXPECT_TRUE(fs::is_regular_file(path("batch/sample-log.jsonl")));
  EXPECT_NE(parameters_of(path("batch/00001-41.png")).find("Seed: 41"), std::string::npos);
}

// Without --seed each run draws a seed (A1111's -1), and --help says so.
TEST_F(SampleCommands, SeedDefaultsToRandomAndHelpShowsIt) {
  auto r = run_lorastudio("sample --help");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("--seed INT=-1"), std::string::npos) << r.out;
  r = run_lorastudio("sample" + common() + " --prompt cube --steps 1 --sampler Euler -o " + path("random.png"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(parameters_of(path("random.png")).find("Seed: -1"), std::string::npos);
}

TEST_F(SampleCommands, BadInputIsOneLineAndNonZero) {
  auto r = run_lorastudio("sample" + common() + " --prompt x --sampler \"Euler z\" -o " + path("bad.png"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("Euler z"), std::string::npos) << r.out;
  r = run_lorastudio("sample --tokenizer " + std::string(ls::test::kClipVocab) + " --from-png " + model_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find(model_), std::string::npos) << r.out;
  ls::io::write_image(path("plain.png"), cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  r = run_lorastudio("sample --tokenizer " + std::string(ls::test::kClipVocab) + " --from-png " + path("plain.png"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("no `parameters`"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(path("bad.png")));
}

int64_t count_of(const std::string& out, const std::string& what) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(out, m, std::regex("([0-9]+) " + what))) << out;
  return m.empty() ? -1 : std::stoll(m[1]);
}

TEST_F(SampleCommands, SheetRendersOnlyNewCells) {
  const std::string sheet = path("sheet");
  const std::string base = "sheet" + common() + " --prompt \"a cube\" --steps 2 --sampler Euler --title \"dog epochs\"" +
                           " --x \"lora=" + path("loras/dog-*.safetensors") + "\" -o " + sheet;
  auto r = run_lorastudio(base + " --y strength=0.5,0.75,1 --z seed=1,2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(count_of(r.out, "cells"), 12);
  EXPECT_EQ(count_of(r.out, "rendered"), 12);
  EXPECT_EQ(count_of(r.out, "reused"), 0);
  int64_t files = 0;
  for (const auto& e : fs::directory_iterator(sheet + "/cells")) files += e.path().extension() == ".png";
  EXPECT_EQ(files, 12);

  const auto manifest = nlohmann::json::parse(ls::core::read_file(sheet + "/sheet.json"));
  ASSERT_EQ(manifest["cells"].size(), 12u);
  EXPECT_EQ(manifest["axes"][0]["values"], nlohmann::json({"dog-000001", "dog-000002"}));
  EXPECT_EQ(manifest["axes"][1]["values"], nlohmann::json({"0.5", "0.75", "1"}));
  EXPECT_EQ(manifest["axes"][2]["kind"], "seed");
  std::set<std::string> ids;
  EXPECT_EQ(manifest["cells"][1]["params"]["loras"][0]["epoch"], 2);  // from the name's -000002
  for (const auto& c : manifest["cells"]) {
    ids.insert(c["id"].get<std::string>());
    EXPECT_TRUE(fs::is_regular_file(sheet + "/" + c["image"].get<std::string>()));
  }
  EXPECT_EQ(ids.size(), 12u);  // every cell differs in something
  const cv::Mat grid = ls::io::read_image_rgb(sheet + "/grid-000.png");
  EXPECT_GT(grid.cols, 2 * 64);
  EXPECT_GT(grid.rows, 6 * 64);

  // A cell is exactly what `sample --from-png` makes of its parameters.
  const std::string cell = sheet + "/" + manifest["cells"][4]["image"].get<std::string>();
  r = run_lorastudio("sample --tokenizer " + std::string(ls::test::kClipVocab) + " -q --from-png " + cell + " -o " +
                     path("cell.png"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(same_pixels(cell, path("cell.png")));

  // One more strength: 2 LoRAs x 2 seeds = 4 new cells; one more seed then: 2 x 4 = 8.
  r = run_lorastudio(base + " --y strength=0.5,0.75,1,1.25 --z seed=1,2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(count_of(r.out, "cells"), 16);
  EXPECT_EQ(count_of(r.out, "rendered"), 4);
  EXPECT_EQ(count_of(r.out, "reused"), 12);
  r = run_lorastudio(base + " --y strength=0.5,0.75,1,1.25 --z seed=1,2,3");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(count_of(r.out, "rendered"), 8);
  EXPECT_EQ(count_of(r.out, "reused"), 16);
}

TEST_F(SampleCommands, SheetTakesTheEpochOfAFinalFileFromItsMetadata) {
  auto r = run_lorastudio("sheet" + common() + " --prompt cube --steps 2 --sampler Euler --x \"lora=" +
                          path("final/dog.safetensors") + "\" -o " + path("final-sheet"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto manifest = nlohmann::json::parse(ls::core::read_file(path("final-sheet/sheet.json")));
  EXPECT_EQ(manifest["cells"][0]["params"]["loras"][0]["epoch"], 3);
}

TEST_F(SampleCommands, SheetRefusesBadAxes) {
  auto r = run_lorastudio("sheet" + common() + " --y strenght=0.5 -o " + path("bad-sheet"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("did you mean 'strength'"), std::string::npos) << r.out;
  r = run_lorastudio("sheet" + common() + " --y strength=0.5,1 -o " + path("bad-sheet"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("needs a LoRA"), std::string::npos) << r.out;
  r = run_lorastudio("sheet" + common() + " --x \"lora=" + path("loras/cat-*.safetensors") + "\" -o " + path("bad-sheet"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("no file matches"), std::string::npos) << r.out;
}


// v-prediction sampling: --prediction changes the image and the PNG says so (A1111's "Noise
// Schedule: Zero Terminal SNR" for ztsnr); a model carrying ComfyUI's v_pred / ztsnr markers is
// sampled so without the flag; --from-png renders what the PNG says; a bad name is one line.
TEST_F(SampleCommands, PredictionFlagMarkersAndFromPng) {
  const std::string args = common() + " --prompt \"a cube\" --steps 3 --sampler Euler --seed 3 -o ";
  ASSERT_EQ(run_lorastudio("sample" + args + path("eps.png")).exit_code, 0);
  auto r = run_lorastudio("sample" + args + path("v.png") + " --prediction v");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_lorastudio("sample" + args + path("vz.png") + " --prediction v_zsnr");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_FALSE(same_pixels(path("eps.png"), path("v.png")));
  EXPECT_FALSE(same_pixels(path("v.png"), path("vz.png")));
  EXPECT_EQ(parameters_of(path("eps.png")).find("Prediction"), std::string::npos);
  EXPECT_NE(parameters_of(path("v.png")).find("Prediction: v"), std::string::npos) << parameters_of(path("v.png"));
  EXPECT_EQ(parameters_of(path("v.png")).find("Noise Schedule"), std::string::npos);
  EXPECT_NE(parameters_of(path("vz.png")).find("Noise Schedule: Zero Terminal SNR"), std::string::npos);

  // The markers: the same weights plus v_pred and ztsnr sample as v_zsnr with the default auto.
  {
    ls::io::SafetensorsReader reader(model_);
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& info : reader.tensors()) tensors.emplace_back(info.name, reader.load(info.name));
    tensors.emplace_back("v_pred", torch::zeros({0}));
    tensors.emplace_back("ztsnr", torch::zeros({0}));
    ls::io::save_safetensors(path("tiny-vpred.safetensors"), tensors, reader.metadata());
  }
  r = run_lorastudio("sample --model " + path("tiny-vpred.safetensors") + " --tokenizer " +
                     std::string(ls::test::kClipVocab) + " --width 64 --height 64 -q --prompt \"a cube\" --steps 3"
                     " --sampler Euler --seed 3 -o " + path("marked.png"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(same_pixels(path("marked.png"), path("vz.png")));
  EXPECT_NE(parameters_of(path("marked.png")).find("Prediction: v"), std::string::npos);

  // --from-png takes the image's prediction: on the unmarked model it renders v_zsnr again.
  r = run_lorastudio("sample --tokenizer " + std::string(ls::test::kClipVocab) + " -q --from-png " + path("vz.png") +
                     " -o " + path("vz-again.png"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(same_pixels(path("vz.png"), path("vz-again.png")));

  r = run_lorastudio("sample" + args + path("bad.png") + " --prediction vpred");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("auto, epsilon, v, v_zsnr"), std::string::npos) << r.out;
}

}  // namespace
