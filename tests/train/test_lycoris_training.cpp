// Training with kohya_ss' LyCORIS settings (network_module = "lycoris.kohya", network_args
// "algo=loha" ...): the network_args read as lycoris.kohya's create_network reads them, a short
// run writing lycoris' keys, and the metadata train_network.py writes for them.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "models/checkpoint.h"
#include "support/support.h"
#include "support/training_data.h"
#include "train/train_session.h"
#include "train/trainer.h"

namespace {

namespace fs = std::filesystem;
using namespace ls;

train::TrainConfig lycoris_config(std::vector<std::string> args) {
  train::TrainConfig c;
  c.network_module = "lycoris.kohya";
  c.network_dim = 8;
  c.network_alpha = 4;
  c.network_args = std::move(args);
  return c;
}

TEST(LycorisNetworkArgs, ReadAsLycorisReadsThem) {
  auto o = train::network_options(lycoris_config({"algo=loha"}));
  EXPECT_TRUE(o.lycoris);
  EXPECT_EQ(o.module.algo, lora::Algo::kLoha);
  EXPECT_EQ(o.preset, "full");
  // lycoris: conv_dim and conv_alpha default to network_dim and network_alpha.
  EXPECT_EQ(o.conv_rank, 8);
  EXPECT_DOUBLE_EQ(o.conv_alpha, 4.0);
  o = train::network_options(lycoris_config({"algo=lokr", "factor=8", "decompose_both=False", "use_tucker=True",
                                             "conv_dim=2", "conv_alpha=1", "preset=attn-mlp", "full_matrix=false"}));
  EXPECT_EQ(o.module.algo, lora::Algo::kLokr);
  EXPECT_EQ(o.module.factor, 8);
  EXPECT_TRUE(o.module.decompose_both);  // lycoris passes the text on, and "False" is a true string
  EXPECT_TRUE(o.module.tucker);
  EXPECT_FALSE(o.module.full_matrix);
  EXPECT_EQ(o.conv_rank, 2);
  EXPECT_DOUBLE_EQ(o.conv_alpha, 1.0);
  EXPECT_EQ(o.preset, "attn-mlp");
  o = train::network_options(lycoris_config({"algo=locon", "dora_wd=True", "wd_on_output=False"}));
  EXPECT_EQ(o.module.algo, lora::Algo::kLora);
  EXPECT_TRUE(o.module.dora);
  EXPECT_FALSE(o.module.wd_on_out);
  // What lorastudio cannot honour is one line naming the key.
  EXPECT_NE(test::error_of([] { train::network_options(lycoris_config({"algo=ia3"})); }).find("algo=ia3"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { train::network_options(lycoris_config({"use_scalar=True"})); }).find("use_scalar"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { train::network_options(lycoris_config({"algo=loha", "fcator=4"})); }).find("fcator"),
            std::string::npos);
  // networks.lora has no algo: refused by name there.
  train::TrainConfig kohya;
  kohya.network_args = {"algo=loha"};
  EXPECT_NE(test::error_of([&] { train::network_options(kohya); }).find("algo"), std::string::npos);
}

class LycorisTraining : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    dir_ = new test::TempDir();
    test::write_tiny_checkpoint(*dir_ / "tiny.safetensors");
    toml_ = test::write_training_dataset(*dir_ / "data", 0);
  }
  static void TearDownTestSuite() { delete dir_; }

  static train::TrainConfig config(const fs::path& out, std::vector<std::string> args) {
    train::TrainConfig c = lycoris_config(std::move(args));
    c.network_dim = 4;
    c.network_alpha = 2;
    c.pretrained_model_name_or_path = (*dir_ / "tiny.safetensors").string();
    c.dataset_config = toml_;
    c.tokenizer = test::kClipVocab;
    c.output_dir = out.string();
    c.output_name = "lyco";
    c.learning_rate = 1e-3;
    c.seed = 3;
    c.max_train_steps = 2;
    return c;
  }

  static test::TempDir* dir_;
  static std::string toml_;
};
test::TempDir* LycorisTraining::dir_ = nullptr;
std::string LycorisTraining::toml_;

// kohya_ss' LoHa and LoKr + DoRA settings train, write lycoris' keys with every tensor moved
// from its start, and the metadata says lycoris.kohya with the network_args as given.
TEST_F(LycorisTraining, KohyaSsSettingsTrainAndSayWhatWasUsed) {
  struct Run {
    std::vector<std::string> args;
    const char* key;
    lora::Algo algo;
    const char* json_args;
  };
  const Run runs[] = {
      {{"algo=loha", "conv_dim=2", "conv_alpha=1"}, ".hada_w2_a", lora::Algo::kLoha,
       R"({"algo": "loha", "conv_dim": "2", "conv_alpha": "1", "dropout": null})"},
      {{"algo=lokr", "factor=4", "dora_wd=True"}, ".lokr_w1", lora::Algo::kLokr,
       R"({"algo": "lokr", "factor": "4", "dora_wd": "True", "dropout": null})"},
  };
  for (const Run& run : runs) {
    SCOPED_TRACE(run.key);
    test::TempDir out;
    const auto r = train::run_training(config(out.path(), run.args));
    ASSERT_FALSE(r.final_lora.empty());
    io::SafetensorsReader reader(r.final_lora);
    const auto meta = reader.metadata();
    EXPECT_EQ(meta.at("ss_network_module"), "lycoris.kohya");
    EXPECT_EQ(meta.at("ss_network_args"), run.json_args);
    EXPECT_EQ(meta.at("ss_network_dim"), "4");
    bool has = false, dora = false;
    for (const auto& info : reader.tensors()) {
      has |= info.name.find(run.key) != std::string::npos;
      dora |= info.name.find(".dora_scale") != std::string::npos;
      EXPECT_EQ(info.name.find(".lora_down"), std::string::npos) << info.name;
    }
    EXPECT_TRUE(has);
    EXPECT_EQ(dora, run.algo == lora::Algo::kLokr);
    // The zero-initialised factor (LoHa w2_a, LoKr w2_b) has learnt something.
    double moved = 0;
    for (const auto& info : reader.tensors())
      if (info.name.find(run.algo == lora::Algo::kLoha ? ".hada_w2_a" : ".lokr_w2_b") != std::string::npos)
        moved += reader.load(info.name).abs().sum().item<double>();
    EXPECT_GT(moved, 0.0);
    auto model = models::load_sdxl_checkpoint((*dir_ / "tiny.safetensors").string(), "", {true, true, false},
                                              torch::kCPU, torch::kFloat);
    auto loaded = lora::load_lora(r.final_lora, model);
    EXPECT_TRUE(loaded.unmatched.empty());
    for (const auto& [slot, m] : loaded.network->modules()) EXPECT_EQ(m->algo(), run.algo) << slot.name;
    const auto info = test::run_lorastudio("lora info " + r.final_lora + " --json");
    ASSERT_EQ(info.exit_code, 0) << info.out;
    const auto j = nlohmann::json::parse(info.out);
    EXPECT_GT(j["parts"]["unet"]["algorithms"][lora::algo_name(run.algo)].get<int>(), 0) << info.out;
  }
}

// A LoKr + DoRA run with rank and module dropout, interrupted after step 1 and resumed, writes
// the bytes of the uninterrupted run: every lycoris tensor (dora_scale too) is in the state.
TEST_F(LycorisTraining, InterruptedAndResumedEqualsUninterrupted) {
  const std::vector<std::string> args = {"algo=lokr", "factor=4", "dora_wd=True", "rank_dropout=0.2",
                                         "module_dropout=0.1"};
  test::TempDir whole, parts;
  const auto full = train::run_training(config(whole.path(), args));
  train::TrainHooks stop;
  stop.stop_after_step = [](int64_t step) { return step == 1; };
  const auto first = train::run_training(config(parts.path(), args), stop);
  ASSERT_TRUE(first.interrupted);
  train::TrainConfig resume = config(parts.path(), args);
  resume.resume = first.last_state;
  const auto second = train::run_training(resume);
  io::SafetensorsReader a(full.final_lora), b(second.final_lora);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& info : a.tensors())
    EXPECT_TRUE(torch::equal(a.load(info.name), b.load(info.name))) << info.name;
}

}  // namespace
