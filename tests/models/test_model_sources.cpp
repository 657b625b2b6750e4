// Model sources through the executable: `debug forward` on a diffusers-folder copy of the tiny model
// and on its single-file form gives bit-identical outputs (the same weights into the same modules:
// the key maps move tensors, they never compute), for every component.
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/diffusers_folder.h"
#include "support/support.h"

namespace {

namespace fs = std::filesystem;
using ls::test::run_lorastudio;

class ModelSourcesCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ls::test::TempDir();
    config_ = std::string(ls::test::kSourceDir) + "/configs/sdxl_tiny.json";
    single_ = (*dir_ / "tiny.safetensors").string();
    folder_ = (*dir_ / "tiny-diffusers").string();
    auto r = run_lorastudio("debug make-model --config " + config_ + " --seed 3 --output " + single_);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto model = ls::models::load_sdxl_checkpoint(single_, "", ls::models::Components::all(), torch::kCPU, torch::kFloat);
    ls::models::save_diffusers_folder(folder_, model, std::nullopt);
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::string forward(const std::string& model, const std::string& component, const std::string& tag,
                             const std::string& extra = "") {
    const std::string in = (*dir_ / (component + "_in.safetensors")).string();
    const std::string out = (*dir_ / (component + "_" + tag + ".safetensors")).string();
    if (!fs::exists(in)) {
      auto r = run_lorastudio("debug make-inputs --config " + config_ + " --component " + component +
                              " --batch 2 --height 64 --width 32 --seed 5 --output " + in);
      EXPECT_EQ(r.exit_code, 0) << r.out;
    }
    auto r = run_lorastudio("debug forward --model " + model + " --component " + component + " --inputs " + in +
                            " --output " + out + " " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  }

  static void expect_identical(const std::string& a, const std::string& b) {
    const ls::io::SafetensorsReader x(a), y(b);
    ASSERT_EQ(x.tensors().size(), y.tensors().size());
    for (const auto& info : x.tensors()) EXPECT_TRUE(ls::test::bit_equal(y.load(info.name), x.load(info.name))) << info.name;
  }

  static inline ls::test::TempDir* dir_ = nullptr;
  static inline std::string config_, single_, folder_;
};

TEST_F(ModelSourcesCli, DebugForwardOfTheFolderEqualsTheSingleFile) {
  for (const char* component : {"unet", "text", "vae-encode", "vae-decode"}) {
    SCOPED_TRACE(component);
    expect_identical(forward(single_, component, "single"), forward(folder_, component, "folder"));
  }
}

TEST_F(ModelSourcesCli, AFolderThatIsNoModelIsOneLine) {
  fs::create_directories(*dir_ / "not-a-model");
  auto r = run_lorastudio("debug forward --model " + (*dir_ / "not-a-model").string() +
                          " --component unet --inputs " + single_ + " --output " + (*dir_ / "x.safetensors").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("without model_index.json"), std::string::npos) << r.out;
}

}  // namespace
