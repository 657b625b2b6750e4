// plan, lora info, merge and debug forward --lora through the executable, on a tiny model, with
// kohya LoRAs and LyCORIS files (LoHa, LoKr, DoRA).
#include <regex>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "lora/network.h"
#include "models/checkpoint.h"
#include "support/support.h"

namespace {

using ls::test::run_lorastudio;

class LoraCommands : public ::testing::Test {
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

  // A trained-looking LoRA (non-zero up weights) saved as kohya does.
  static std::string make_lora(int64_t rank, int64_t conv_rank, const std::string& name, c10::ScalarType dtype) {
    auto model = ls::models::load_sdxl_checkpoint(model_, "", {true, true, false}, torch::kCPU, torch::kFloat);
    ls::lora::LoraNetworkOptions o;
    o.rank = rank;
    o.alpha = 1;
    o.conv_rank = conv_rank;
    o.conv_alpha = 1;
    torch::manual_seed(rank);
    ls::lora::LoraNetwork net(model, o);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : net->parameters()) p.normal_(0, 0.1);
    }
    auto file = path(name);
    ls::lora::save_lora(file, *net, dtype, ls::lora::network_metadata(o, "plan", 1024, 1024));
    return file;
  }

  // A trained-looking LyCORIS network (every tensor drawn) saved as lorastudio's trainer does.
  static std::string make_lycoris(ls::lora::Algo algo, bool dora, const std::string& name) {
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

uint64_t planned_bytes(const std::string& out, const std::string& dtype) {
  std::smatch m;
  std::regex re("file size " + dtype + ": ([0-9]+) bytes");
  EXPECT_TRUE(std::regex_search(out, m, re)) << out;
  return m.empty() ? 0 : std::stoull(m[1]);
}

TEST_F(LoraCommands, PlanPredictsTheFileSize) {
  for (int64_t rank : {4, 32}) {
    auto r = run_lorastudio("plan --model " + model_ + " --network_dim " + std::to_string(rank) + " --network_alpha 1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    for (auto [dtype, torch_dtype] : {std::pair{"fp16", torch::kHalf}, {"fp32", torch::kFloat}}) {
      auto file = make_lora(rank, 0, "plan.safetensors", torch_dtype);
      ls::io::SafetensorsReader reader(file);
      uint64_t header = std::filesystem::file_size(file) - reader.data_bytes().size();
      int64_t predicted = planned_bytes(r.out, dtype), actual = std::filesystem::file_size(file);
      EXPECT_LE(std::abs(predicted - actual), static_cast<int64_t>(header)) << "rank " << rank << " " << dtype;
      // The data section is predicted exactly: only the header (date, title) may differ.
      EXPECT_LE(std::abs(predicted - actual), 64) << "rank " << rank << " " << dtype;
    }
  }
}

TEST_F(LoraCommands, PlanForFullSdxlMatchesTheSpec) {
  // SPEC.md: 3,563,008 parameters per unit rank (+1 alpha per module, 986 modules) -> ~1.82 GB at rank 256.
  auto r = run_lorastudio("plan --network_dim 256 --network_alpha 1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(std::to_string(3563008LL * 256 + 986) + " parameters"), std::string::npos) << r.out;
  uint64_t fp16 = planned_bytes(r.out, "fp16");
  EXPECT_NEAR(fp16 / 1e9, 1.824, 0.01);
}

TEST_F(LoraCommands, InfoDescribesTheFile) {
  auto file = make_lora(8, 4, "info.safetensors", torch::kHalf);
  auto r = run_lorastudio("lora info " + file + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parts"]["unet"]["ranks"], nlohmann::json({4, 8}));
  EXPECT_GT(j["parts"]["unet"]["conv_modules"].get<int>(), 0);
  EXPECT_EQ(j["parts"]["te1"]["modules"], 3 * 6);
  EXPECT_EQ(j["dtypes"], nlohmann::json({"F16"}));
  EXPECT_EQ(j["metadata"]["ss_network_dim"], "8");
  auto bad = run_lorastudio("lora info " + model_);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("not a LoRA"), std::string::npos) << bad.out;
}

TEST_F(LoraCommands, MergedCheckpointEqualsDynamicLora) {
  auto lora = make_lora(4, 2, "merge.safetensors", torch::kFloat);
  auto in = path("unet_in.safetensors");
  ASSERT_EQ(run_lorastudio("debug make-inputs --config " + config_ + " --component unet --height 64 --width 64 --output " + in).exit_code, 0);
  auto dyn = path("dyn.safetensors"), base = path("base.safetensors"), merged_out = path("merged_out.safetensors");
  auto merged = path("merged.safetensors");
  auto r = run_lorastudio("debug forward --model " + model_ + " --component unet --inputs " + in + " --output " + dyn +
                          " --lora " + lora + ":0.8");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_lorastudio("debug forward --model " + model_ + " --component unet --inputs " + in + " --output " + base +
                     " --lora " + lora + ":0");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_lorastudio("merge --model " + model_ + " --lora " + lora + ":0.8 --save_precision fp32 --output " + merged);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_lorastudio("debug forward --model " + merged + " --component unet --inputs " + in + " --output " + merged_out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ls::io::SafetensorsReader d(dyn), b(base), m(merged_out);
  EXPECT_LE(ls::test::norm_rel_error(m.load("out"), d.load("out")), 1e-5);
  EXPECT_GT(ls::test::norm_rel_error(b.load("out"), d.load("out")), 1e-3);
  auto plain = path("plain.safetensors");
  ASSERT_EQ(run_lorastudio("debug forward --model " + model_ + " --component unet --inputs " + in + " --output " + plain).exit_code, 0);
  ls::io::SafetensorsReader p(plain);
  EXPECT_TRUE(torch::equal(b.load("out"), p.load("out")));  // multiplier 0 is the base model exactly
}

TEST_F(LoraCommands, TextLoraChangesTheContext) {
  auto lora = make_lora(4, 0, "text.safetensors", torch::kFloat);
  auto in = path("text_in.safetensors"), a = path("a.safetensors"), b = path("b.safetensors");
  ASSERT_EQ(run_lorastudio("debug make-inputs --config " + config_ + " --component text --output " + in).exit_code, 0);
  ASSERT_EQ(run_lorastudio("debug forward --model " + model_ + " --component text --inputs " + in + " --output " + a).exit_code, 0);
  auto r = run_lorastudio("debug forward --model " + model_ + " --component text --inputs " + in + " --output " + b +
                          " --lora " + lora);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ls::io::SafetensorsReader ra(a), rb(b);
  EXPECT_GT(ls::test::norm_rel_error(rb.load("context"), ra.load("context")), 1e-3);
}

TEST_F(LoraCommands, LycorisPlanPredictsTheFileAndInfoNamesTheAlgorithm) {
  const auto file = make_lycoris(ls::lora::Algo::kLokr, false, "lokr.safetensors");
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
TEST_F(LoraCommands, LycorisMergedCheckpointEqualsDynamicApplication) {
  auto in = path("unet_in.safetensors");
  ASSERT_EQ(run_lorastudio("debug make-inputs --config " + config_ +
                           " --component unet --height 64 --width 64 --output " + in).exit_code, 0);
  for (auto [algo, dora, name] : {std::tuple{ls::lora::Algo::kLoha, false, "loha"},
                                  std::tuple{ls::lora::Algo::kLora, true, "dora"}}) {
    SCOPED_TRACE(name);
    const auto lora = make_lycoris(algo, dora, std::string(name) + ".safetensors");
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
