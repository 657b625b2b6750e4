// kohya's block-wise LoRA functions for SDXL against the values kohya's own code gives
// (tests/fixtures/kohya_blocks/blocks.json, made by scripts/make-kohya-block-fixtures from
// networks/lora.py at 48d368fa): the block index of every module name of its SDXL LoRA, the lr
// weights, block ranks and LoRA+ ratios create_network derives from network_args, where it fails,
// and prepare_optimizer_params' groups over the full-size network's 1052 modules.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "lora/block_weights.h"
#include "support/support.h"
#include "train/param_groups.h"

namespace ls {
namespace {

using Json = nlohmann::json;

const Json& blocks_fixture() {
  static const Json j = [] {
    std::ifstream in(std::string(test::kSourceDir) + "/tests/fixtures/kohya_blocks/blocks.json");
    EXPECT_TRUE(in.good()) << "tests/fixtures/kohya_blocks/blocks.json is missing";
    return Json::parse(in);
  }();
  return j;
}

// create_network's network_args as lorastudio splits them: conv_dim / conv_alpha are network
// options (train_session's network_options), the rest goes to parse_block_args.
lora::BlockArgs parse_case(const Json& c, std::vector<std::string>* notes = nullptr) {
  std::map<std::string, std::string> args;
  std::optional<int64_t> conv_dim;
  std::optional<double> conv_alpha;
  for (const auto& [k, v] : c.at("network_args").items()) {
    if (k == "conv_dim") conv_dim = std::stoll(v.get<std::string>());
    else if (k == "conv_alpha") conv_alpha = std::stod(v.get<std::string>());
    else args[k] = v.get<std::string>();
  }
  const int64_t dim = c.contains("network_dim") ? c.at("network_dim").get<int64_t>() : 8;
  const double alpha = c.contains("network_alpha") ? c.at("network_alpha").get<double>() : 4.0;
  return lora::parse_block_args(args, dim, alpha, conv_dim, conv_alpha, notes);
}

// The same libm sin and the same operation order as Python's: equal up to a libm that rounds a
// last bit differently (EXPECT_DOUBLE_EQ's 4 ulps).
void expect_doubles(const Json& expected, const std::vector<double>& got, const std::string& what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_DOUBLE_EQ(got[i], expected[i].get<double>()) << what << " [" << i << "]";
}

TEST(KohyaBlockIndex, EveryModuleOfKohyasSdxlLora) {
  const Json& table = blocks_fixture().at("block_index");
  ASSERT_EQ(table.size(), 794u);  // 788 modules of kohya's conv_dim LoRA + 6 other names
  std::map<int, int> per_block;
  for (const Json& row : table) {
    const std::string name = row[0].get<std::string>();
    EXPECT_EQ(lora::kohya_block_index(name, true), row[1].get<int>()) << name;
    ++per_block[row[1].get<int>()];
  }
  EXPECT_EQ(per_block.size(), 24u);  // -1 and the 23 blocks 0..22 all occur
  // SD 1.x names keep kohya's diffusers mapping.
  EXPECT_EQ(lora::kohya_block_index("lora_unet_down_blocks_1_attentions_0_proj_in", false), 1 + 3 * 1 + 0);
  EXPECT_EQ(lora::kohya_block_index("lora_unet_up_blocks_2_upsamplers_0_conv", false), 13 + 3 * 2 + 2);
  EXPECT_EQ(lora::kohya_block_index("lora_unet_mid_block_attentions_0_proj_in", false), 12);
}

TEST(KohyaBlockArgs, CreateNetworkCases) {
  for (const Json& c : blocks_fixture().at("networks")) {
    const std::string name = c.at("name").get<std::string>();
    SCOPED_TRACE(name);
    const lora::BlockArgs b = parse_case(c);
    ASSERT_EQ(b.lr_weights.has_value(), !c.at("block_lr_weight").is_null());
    if (b.lr_weights) expect_doubles(c.at("block_lr_weight"), *b.lr_weights, "lr weights");
    ASSERT_EQ(b.ranks.has_value(), !c.at("block_dims").is_null());
    if (b.ranks) {
      EXPECT_EQ(b.ranks->dims, c.at("block_dims").get<std::vector<int64_t>>());
      expect_doubles(c.at("block_alphas"), b.ranks->alphas, "alphas");
      if (c.at("conv_block_dims").is_null()) {
        EXPECT_TRUE(b.ranks->conv_dims.empty());
      } else {
        EXPECT_EQ(b.ranks->conv_dims, c.at("conv_block_dims").get<std::vector<int64_t>>());
        expect_doubles(c.at("conv_block_alphas"), b.ranks->conv_alphas, "conv alphas");
      }
    }
    const Json& plus = c.at("loraplus");
    const std::optional<double> got[] = {b.loraplus_lr_ratio, b.loraplus_unet_lr_ratio, b.loraplus_text_encoder_lr_ratio};
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(got[i].has_value(), !plus[i].is_null()) << i;
      if (got[i]) EXPECT_EQ(*got[i], plus[i].get<double>()) << i;
    }
  }
}

TEST(KohyaBlockArgs, RefusesWhatKohyaStopsOn) {
  std::map<std::string, std::string> expected_key = {
      {"unknown_preset", "down_lr_weight: unknown preset 'squares'"},
      {"single_down_value", "down_lr_weight: unknown preset '0.5'"},
      {"too_long_down_only", "down_lr_weight has 10 values but SDXL has 9 input blocks"},
      {"mid_preset", "mid_lr_weight: 'cosine' is not a number"},
      {"block_dims_count", "block_dims must have 23 values for SDXL"},
      {"block_alphas_count", "block_alphas must have 23 values"},
      {"conv_block_dims_count", "conv_block_dims must have 23 values"},
      {"block_dims_float", "block_dims: '4.5' is not an integer"}};
  const Json& failing = blocks_fixture().at("failing");
  ASSERT_EQ(failing.size(), expected_key.size());
  for (const Json& c : failing) {
    const std::string name = c.at("name").get<std::string>();
    const std::string e = test::error_of([&] { parse_case(c); });
    EXPECT_EQ(e.rfind("network_args ", 0), 0u) << name << ": " << e;
    EXPECT_NE(e.find(expected_key.at(name)), std::string::npos) << name << ": " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

TEST(KohyaBlockArgs, NotesWhatKohyaWarnsAbout) {
  std::vector<std::string> notes;
  lora::parse_block_args({{"down_lr_weight", "1,1"}, {"mid_lr_weight", "1,1,1,1"}}, 4, 1, std::nullopt, std::nullopt,
                         &notes);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("mid_lr_weight has more than 3 values"), std::string::npos) << notes[0];
  EXPECT_NE(notes[1].find("down_lr_weight has 2 of 9 values; the rest are 1.0"), std::string::npos) << notes[1];
  notes.clear();
  lora::parse_block_args({{"conv_block_dims", "1"}}, 4, 1, std::nullopt, std::nullopt, &notes);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("conv_block_dims is ignored without block_dims"), std::string::npos) << notes[0];
}

TEST(KohyaParamGroups, PrepareOptimizerParamsCases) {
  const Json& f = blocks_fixture();
  std::vector<std::string> modules = f.at("te_modules").get<std::vector<std::string>>();
  const size_t te = modules.size();
  for (const Json& row : f.at("block_index")) {
    const std::string name = row[0].get<std::string>();
    if (modules.size() < te + 788) modules.push_back(name);  // the 788 modules come first in the table
  }
  // Our refs interleave each module's lora_down and lora_up (a network's order); the fixture
  // numbers every lora_down, then every lora_up.
  std::vector<train::LoraParamRef> refs;
  std::vector<size_t> fixture_index;
  for (size_t m = 0; m < modules.size(); ++m) {
    for (const bool up : {false, true}) {
      refs.push_back({modules[m], m >= te, up});
      fixture_index.push_back(up ? modules.size() + m : m);
    }
  }
  std::map<std::string, const Json*> networks;
  for (const Json& n : f.at("networks")) networks[n.at("name").get<std::string>()] = &n;
  for (const Json& c : f.at("param_groups")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    auto opt = [&](const char* key) {
      return c.at(key).is_null() ? std::nullopt : std::optional<double>(c.at(key).get<double>());
    };
    const lora::BlockArgs blocks = parse_case(*networks.at(c.at("network").get<std::string>()));
    const auto groups = train::kohya_param_groups(refs, opt("text_encoder_lr"), opt("unet_lr"),
                                                  c.at("learning_rate").get<double>(), blocks);
    const Json& want = c.at("groups");
    ASSERT_EQ(groups.size(), want.size());
    for (size_t g = 0; g < groups.size(); ++g) {
      EXPECT_EQ(groups[g].description, want[g].at("description").get<std::string>()) << g;
      EXPECT_EQ(groups[g].lr, want[g].at("lr").get<double>()) << g;  // the same products of doubles
      std::vector<size_t> got;
      for (size_t i : groups[g].params) got.push_back(fixture_index[i]);
      std::sort(got.begin(), got.end());
      std::vector<size_t> expected;
      for (const Json& run : want[g].at("params"))
        for (size_t k = 0; k < run[1].get<size_t>(); ++k) expected.push_back(run[0].get<size_t>() + k);
      EXPECT_EQ(got, expected) << groups[g].description;
    }
  }
}

TEST(KohyaParamGroups, MiddleBlockOnlyNetworkTakesTheLastWeight) {
  // Without input/output block modules kohya looks the SDXL names up as SD 1.x ones: index -1,
  // Python's last entry of the weights (1.0, the "out" block), not the middle blocks' weights.
  const lora::BlockArgs blocks = lora::parse_block_args({{"mid_lr_weight", "0.5,0.5,0.5"}}, 4, 1, std::nullopt,
                                                        std::nullopt);
  const std::vector<train::LoraParamRef> refs = {{"lora_unet_middle_block_1_proj_in", true, false},
                                                 {"lora_unet_middle_block_1_proj_in", true, true}};
  const auto groups = train::kohya_param_groups(refs, std::nullopt, std::nullopt, 1e-4, blocks);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].description, "unet_block-1");
  EXPECT_EQ(groups[0].lr, 1e-4);
}

}  // namespace
}  // namespace ls
