// Block-wise settings in a training on the tiny model (its U-Net has SDXL's block layout): block_dims
// / block_alphas / conv_block_dims give each saved module its block's rank and alpha, and the plan
// counts the same parameters; down/mid/up_lr_weight and LoRA+ give kohya's parameter groups and
// leave zero-weight blocks without modules; Prodigy refuses groups of unequal lr in one line.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/strings.h"
#include "io/safetensors.h"
#include "lora/block_weights.h"
#include "lora/network.h"
#include "models/checkpoint.h"
#include "support/support.h"
#include "support/tiny_training.h"
#include "train/train_session.h"
#include "train/trainer.h"

namespace ls {
namespace {

class BlockTrainingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);  // ctest runs two binaries at once on two cores
    tiny_ = new test::TinyTraining();
  }
  static void TearDownTestSuite() { delete tiny_; }

  static train::TrainConfig config(const std::string& out) { return tiny_->config(out); }

  static std::string joined(const std::vector<double>& v) {
    std::string s;
    for (double x : v) s += (s.empty() ? "" : ",") + str_cat(x);
    return s;
  }

  static test::TinyTraining* tiny_;
};
test::TinyTraining* BlockTrainingTest::tiny_ = nullptr;

// kohya's create_modules in block mode: a transformer's Linear gets block_dims[block]; inside a
// ResBlock / Downsample / Upsample (targets once conv_block_dims is given) a Linear or 1x1 conv gets
// block_dims[block] and a 3x3 conv conv_block_dims[block]; rank 0 makes no module; the text
// encoders keep network_dim / network_alpha.
TEST_F(BlockTrainingTest, BlockDimsGiveEachSavedModuleItsBlocksRankAndAlpha) {
  test::TempDir out;
  std::vector<double> dims(lora::kSdxlBlockCount), alphas(dims.size()), conv_dims(dims.size());
  for (int i = 0; i < lora::kSdxlBlockCount; ++i) {
    dims[i] = i <= 9 ? 2 : i <= 12 ? 3 : 1 + i % 2;
    alphas[i] = 0.5 * (i % 4 + 1);
    conv_dims[i] = i <= 9 ? 2 : i <= 12 ? 0 : 1;
  }
  dims[14] = 0;  // output_blocks_1: only its 3x3 convs keep a module
  train::TrainConfig c = config(out.path().string());
  c.network_args = {"block_dims=" + joined(dims), "block_alphas=" + joined(alphas),
                    "conv_block_dims=" + joined(conv_dims), "conv_block_alphas=" + joined(std::vector<double>(23, 1.5))};
  const train::TrainResult r = train::run_training(c);

  models::SdxlModel model = models::load_sdxl_checkpoint(c.pretrained_model_name_or_path, "", models::Components::all(),
                                                         torch::kCPU, torch::kFloat);
  std::map<std::string, std::pair<int64_t, double>> expected;  // module -> rank, alpha
  for (const auto& [name, slot] : lora::all_lora_slots(model)) {
    if (slot.part != lora::Part::kUnet) {
      expected[name] = {4, 2.0};
      continue;
    }
    const int b = lora::kohya_block_index(name);
    const double rank = slot.conv3x3 ? conv_dims[b] : dims[b];
    if (rank > 0) expected[name] = {static_cast<int64_t>(rank), slot.conv3x3 ? 1.5 : alphas[b]};
  }
  io::SafetensorsReader saved(r.final_lora);
  std::map<std::string, std::pair<int64_t, double>> got;
  int64_t parameters = 0;
  for (const auto& info : saved.tensors()) {
    parameters += info.numel();
    const std::string module = info.name.substr(0, info.name.find('.'));
    if (info.name.find(".lora_down.weight") != std::string::npos) got[module].first = info.shape[0];
    if (info.name.find(".alpha") != std::string::npos) got[module].second = saved.load(info.name).item<double>();
  }
  EXPECT_EQ(got, expected);
  std::set<int> blocks;
  for (const auto& [name, ra] : got)
    if (name.rfind("lora_unet_", 0) == 0) blocks.insert(lora::kohya_block_index(name));
  EXPECT_TRUE(blocks.count(14));   // its 3x3 convs
  EXPECT_FALSE(got.count("lora_unet_middle_block_0_in_layers_2"));  // conv rank 0 in the middle blocks
  EXPECT_EQ(got.at("lora_unet_middle_block_0_emb_layers_1").first, 3);  // a ResBlock's Linear: block_dims
  // kohya's json.dumps(net_kwargs): the entries as given, then "dropout": network_dropout (None).
  EXPECT_EQ(saved.metadata().at("ss_network_args"),
            str_cat(R"({"block_dims": ")", joined(dims), R"(", "block_alphas": ")", joined(alphas),
                    R"(", "conv_block_dims": ")", joined(conv_dims), R"(", "conv_block_alphas": ")",
                    joined(std::vector<double>(23, 1.5)), R"(", "dropout": null})"));
  // The plan sees the same per-block ranks: its parameter count is the file's.
  EXPECT_EQ(train::plan_training(c).lora_parameters, parameters);
}

TEST_F(BlockTrainingTest, LrWeightsAndLoraPlusGiveKohyasGroups) {
  test::TempDir out;
  train::TrainConfig c = config(out.path().string());
  c.unet_lr = 1e-3;
  c.text_encoder_lr = 5e-4;
  c.network_args = {"down_lr_weight=1,1,1,1,1,0,1,1,0.5", "mid_lr_weight=0.5", "up_lr_weight=sine",
                    "loraplus_unet_lr_ratio=4"};
  std::vector<std::string> notes;
  const auto s = train::build_session(c, notes);
  const std::vector<double> w = *s->network_options.blocks.lr_weights;
  // Blocks at weight 0 (input_blocks_5 = 6, output_blocks_0 = 13 under "sine") get no modules.
  std::set<int> blocks;
  for (const auto& [slot, module] : s->network->modules())
    if (slot.part == lora::Part::kUnet) blocks.insert(lora::kohya_block_index(slot.name));
  EXPECT_FALSE(blocks.count(6));
  EXPECT_FALSE(blocks.count(13));
  EXPECT_TRUE(blocks.count(5) && blocks.count(9) && blocks.count(11) && blocks.count(14));
  // Groups: the text encoders' (no ratio of their own), then per block in order its lora_down
  // group at unet_lr x weight and its lora_up "plus" group at 4 x that.
  std::set<const void*> up_tensors;
  for (const auto& [slot, module] : s->network->modules())
    for (const auto& p : module->named_parameters())
      if (p.key().find("lora_up") != std::string::npos) up_tensors.insert(p.value().unsafeGetTensorImpl());
  const auto& groups = s->optimizer->param_groups();
  ASSERT_EQ(groups.size(), s->group_names.size());
  ASSERT_EQ(s->group_names[0], "textencoder");
  EXPECT_EQ(groups[0].options().get_lr(), 5e-4);
  EXPECT_EQ(groups.size(), 1 + 2 * blocks.size());
  size_t tensors = groups[0].params().size();
  int last_block = -1;
  for (size_t g = 1; g < groups.size(); ++g) {
    const std::string& name = s->group_names[g];
    const bool plus = name.size() > 5 && name.compare(name.size() - 5, 5, " plus") == 0;
    ASSERT_EQ(name.rfind("unet_block", 0), 0u) << name;
    const int b = std::stoi(name.substr(10));
    EXPECT_EQ(plus, g % 2 == 0) << name;
    EXPECT_GE(b, last_block) << name;
    last_block = b;
    EXPECT_EQ(groups[g].options().get_lr(), 1e-3 * w[b] * (plus ? 4.0 : 1.0)) << name;
    for (const auto& p : groups[g].params()) EXPECT_EQ(up_tensors.count(p.unsafeGetTensorImpl()), plus ? 1u : 0u) << name;
    tensors += groups[g].params().size();
  }
  EXPECT_EQ(tensors, s->trainable.size());
  EXPECT_EQ(s->group_names[1], "unet_block5");  // input_blocks_4: the first transformer (no conv modules here)
}

TEST_F(BlockTrainingTest, ProdigyRefusesGroupsOfUnequalLr) {
  test::TempDir out;
  train::TrainConfig c = config(out.path().string());
  c.optimizer_type = "Prodigy";
  c.learning_rate = 1;
  c.network_args = {"loraplus_lr_ratio=16"};
  c.dataset_config = (out / "missing.toml").string();  // the LoRA+ check comes before any loading
  std::vector<std::string> notes;
  std::string e = test::error_of([&] { train::build_session(c, notes); });
  EXPECT_NE(e.find("optimizer_type Prodigy adapts one step size for every parameter group, but LoRA+"),
            std::string::npos) << e;
  EXPECT_NE(e.find("loraplus_lr_ratio = 16"), std::string::npos) << e;

  c = config(out.path().string());
  c.optimizer_type = "Prodigy";
  c.learning_rate = 1;
  c.network_args = {"down_lr_weight=1,1,1,1,0.5,1,1,1,1"};
  e = test::error_of([&] { train::build_session(c, notes); });
  EXPECT_NE(e.find("the group textencoder has lr 1 and unet_block5 lr 0.5"), std::string::npos) << e;
  EXPECT_NE(e.find("give down/mid/up_lr_weight only 0 or 1"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;

  // Weights of 0 and 1 only: one lr, the zero blocks have no modules at all.
  c.network_args = {"down_lr_weight=1,1,1,1,0,1,1,1,1"};
  EXPECT_NO_THROW(train::build_session(c, notes));
}

// LyCORIS' create_network reads the LoRA+ ratios and none of networks.lora's block-wise keys.
TEST(BlockArgsLycoris, OnlyLoraPlusApplies) {
  train::TrainConfig c;
  c.network_module = "lycoris.kohya";
  c.network_args = {"algo=lora", "down_lr_weight=sine", "block_dims=4",  // not 23 values: an error, were it read
                    "loraplus_lr_ratio=8"};
  std::vector<std::string> notes;
  const lora::LoraNetworkOptions o = train::network_options(c, &notes);
  EXPECT_FALSE(o.blocks.lr_weights);
  EXPECT_FALSE(o.blocks.ranks);
  EXPECT_EQ(o.blocks.loraplus_ratio(true), 8.0);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("network_args block_dims is ignored with lycoris.kohya"), std::string::npos) << notes[0];
  EXPECT_NE(notes[1].find("network_args down_lr_weight is ignored"), std::string::npos) << notes[1];
}

// `lorastudio plan` (full-size SDXL) reads the same network_args: block_dims and conv_block_dims of 4
// everywhere are network_dim 4 with conv_dim 4, module for module (kohya's 788 U-Net modules).
TEST(BlockPlan, UniformBlockDimsPlanLikeNetworkAndConvDim) {
  const std::string fours = "4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4";
  const auto blocks = test::run_lorastudio("plan --network_args block_dims=" + fours + " --network_args conv_block_dims=" +
                                           fours);
  const auto plain = test::run_lorastudio("plan --network_dim 4 --conv_dim 4 --conv_alpha 1");
  ASSERT_EQ(blocks.exit_code, 0) << blocks.out;
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_NE(blocks.out.find("U-Net ranks per block (0-22): " + fours), std::string::npos) << blocks.out;
  // The counts (the file sizes differ by the metadata: ss_network_args holds the block lists).
  const auto from = [](const std::string& out) {
    const size_t a = out.find("  lora_unet");
    return out.substr(a, out.find("  file size") - a);
  };
  EXPECT_EQ(from(blocks.out), from(plain.out));
  EXPECT_NE(plain.out.find("lora_unet  788 modules"), std::string::npos) << plain.out;
}

}  // namespace
}  // namespace ls
