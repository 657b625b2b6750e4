// plan, lora info, merge and debug forward --lora with LyCORIS files (LoHa, LoKr, DoRA) through
// the executable, on a tiny model.
#include <regex>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "lora/network.h"
#include "models/checkpoint.h"
#include "support/support.h"

namespace {

using ls::test::run_lorastudio;

class LycorisCommands : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ls::test::TempDir();
    config_ = std::string(ls::test::kSourceDir) + "/configs/sdxl_tiny.json";
    model_ = (*dir_ / "tiny.safetensors").string();
    auto r = run_lorastudio("debug make-model --config " + config_ + " --seed 4 --output " + model_);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string path(const std::string& name) { return (*dir_ / name).string(); }

  // A trained-looking LyCORIS network (every tensor drawn) saved as lorastudio's trainer does.
  static std::string make(ls::lora::Algo algo, bool dora, const std::string& name) {
    auto model = ls::models::load_sdxl_checkpoint(model_, "", {true, true, false}, torch::kCPU, torch::kFloat);
    ls::lora::LoraNetworkOptions o;
    o.lycoris = true;
    o.module.algo = algo;
    o.module.dora = dora;
    o.module.factor = 8;
    o.rank = 2, o.alpha = 1, o.conv_rank = 2, o.conv_alpha = 1;
    o.network_args = {std::string("algo=") + ls::lora::algo_name(algo), "factor=8", "conv_dim=2", "conv_alpha=1"};
    if (dora) o.network_args.push_back("dora_wd=True");
    torch::manual_seed(5);
    ls::lora::LoraNetwork net(model, o);
    {
      torch::NoGradGuard no_grad;
      for (auto& [slot, m] : net->modules())
        for (auto& [key, p] : m->named_parameters().pairs()) p.add_(torch::randn_like(p) * 0.05);
    }
    auto file = path(name);
    ls::lora::save_lora(file, *net, torch::kFloat, ls::lora::network_metadata(o, "plan", 1024, 1024));
    return file;
  }

  static inline ls::test::TempDir* dir_ = nullptr;
  static inline std::string config_, model_;
};

TEST_F(LycorisCommands, PlanPredictsTheFileAndInfoNamesTheAlgorithm) {
  const auto file = make(ls::lora::Algo::kLokr, false, "lokr.safetensors");
  auto r = run_lorastudio("plan --model " + model_ +
                          " --network_dim 2 --network_alpha 1 --network_module lycoris.kohya --network_args algo=lokr"
                          " factor=8 conv_dim=2 conv_alpha=1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("file size fp32: ([0-9]+) bytes"))) << r.out;
  ls::io::SafetensorsReader reader(file);
  const auto data = static_cast<int64_t>(reader.data_bytes().size());
  const auto predicted = static_cast<int64_t>(std::stoull(m[1]));
  const auto actual = static_cast<int64_t>(std::filesystem::file_size(file));
  EXPECT_LE(std::abs(predicted - actual), 64) << "data " << data;  // only the header's date/title differ
  auto info = run_lorastudio("lora info " + file + " --json");
  ASSERT_EQ(info.exit_code, 0) << info.out;
  const auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["parts"]["unet"]["algorithms"]["lokr"], j["parts"]["unet"]["modules"]);
  EXPECT_EQ(j["metadata"]["ss_network_module"], "lycoris.kohya");
}

// merge of a LoHa and of a DoRA LoCon (at 0.8) gives the checkpoint whose output the dynamic
// application gives (float32: 1e-5 relative, the merge's rounding).
TEST_F(LycorisCommands, MergedCheckpointEqualsDynamicApplication) {
  auto in = path("unet_in.safetensors");
  ASSERT_EQ(run_lorastudio("debug make-inputs --config " + config_ +
                           " --component unet --height 64 --width 64 --output " + in).exit_code, 0);
  for (auto [algo, dora, name] : {std::tuple{ls::lora::Algo::kLoha, false, "loha"},
                                  std::tuple{ls::lora::Algo::kLora, true, "dora"}}) {
    SCOPED_TRACE(name);
    const auto lora = make(algo, dora, std::string(name) + ".safetensors");
    const auto dyn = path(std::string(name) + "_dyn.safetensors"), merged = path(std::string(name) + "_merged.safetensors");
    const auto merged_out = path(std::string(name) + "_merged_out.safetensors");
    auto r = run_lorastudio("debug forward --model " + model_ + " --component unet --inputs " + in + " --output " + dyn +
                            " --lora " + lora + ":0.8");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = run_lorastudio("merge --model " + model_ + " --lora " + lora + ":0.8 --save_precision fp32 --output " + merged);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = run_lorastudio("debug forward --model " + merged + " --component unet --inputs " + in + " --output " + merged_out);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    ls::io::SafetensorsReader d(dyn), mo(merged_out);
    EXPECT_LE(ls::test::norm_rel_error(mo.load("out"), d.load("out")), 1e-5);
  }
}

}  // namespace
