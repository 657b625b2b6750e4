// Florence-2's DaViT tower and multi-modal projector against transformers 5.23's native Florence2:
// image features of the tiny random model (tests/fixtures/florence2/tiny-transformers, goldens in
// tiny-golden.safetensors, made by make_model_fixtures.py), and the real base/large modules'
// parameter names and shapes (keys/{base,large}-transformers.txt).

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "caption/florence2_config.h"
#include "caption/florence2_projector.h"
#include "caption/florence2_vision.h"
#include "io/safetensors.h"
#include "nn/layers.h"
#include "nn/load_report.h"
#include "support/support.h"

namespace florence2_vision_test {

namespace fs = std::filesystem;
using ls::caption::Florence2Projector;
using ls::caption::Florence2Vision;
using ls::caption::Florence2VisionConfig;

fs::path fixture(const std::string& name) {
  return fs::path(ls::test::kSourceDir) / "tests/fixtures/florence2" / name;
}

struct Tiny {
  Florence2Vision vision{nullptr};
  Florence2Projector projector{nullptr};
};

Tiny load_tiny() {
  auto config = ls::caption::read_florence2_config((fixture("tiny-transformers") / "config.json").string());
  Tiny t;
  {
    ls::nn::SkipInitGuard skip;  // every value comes from the file
    t.vision = Florence2Vision(config.vision);
    t.projector = Florence2Projector(config.vision);
  }
  ls::io::SafetensorsReader reader(fixture("tiny-transformers") / "model.safetensors");
  ls::nn::LoadReport report;
  // Only keys under each prefix are read: the language model's are not ours to check here.
  ls::nn::LoadOptions vision_keys, projector_keys;
  vision_keys.prefix = "model.vision_tower.";
  projector_keys.prefix = "model.multi_modal_projector.";
  ls::nn::load_module_state(reader, *t.vision, report, vision_keys);
  ls::nn::load_module_state(reader, *t.projector, report, projector_keys);
  EXPECT_TRUE(report.empty()) << report.summary();
  t.vision->eval();
  t.projector->eval();
  return t;
}

// fp32 through 5 DaViT blocks (each: two depthwise convs, window and channel attention, two MLPs)
// of width <= 128 (the MLP's hidden) and a projection: every op is a sum of at most a few thousand
// products (the widest, the channel attention's q kᵀ, sums over the 3,136 stage-0 tokens), so
// float32 rounding (u = 2^-24 ~ 6e-8 relative per op; sums in another order than the reference's
// grow it by at most sqrt(terms) in practice, ~60 u) stays below 1e-5 relative through the ~40 ops
// on the residual path, with LayerNorms and softmaxes (unit-scale weights) not amplifying it more
// than tenfold: far under the bound of 1e-4 of the largest |feature|, which this checks.
// Measured on x86-64 CPU: 5e-6 of 4.7 (1e-6 relative).
TEST(Florence2VisionGolden, ImageFeaturesEqualTransformers) {
  auto tiny = load_tiny();
  ls::io::SafetensorsReader golden(fixture("tiny-golden.safetensors"));
  auto pixels = golden.load("pixel_values");    // [2, 3, 224, 224]
  auto expected = golden.load("image_features");  // [2, 50, 32]
  torch::InferenceMode inference;
  auto features = tiny.vision->forward(pixels);
  ASSERT_EQ(features.sizes(), c10::IntArrayRef({2, 32, 7, 7}));  // 224 -> 56 -> 28 -> 14 -> 7
  auto tokens = tiny.projector->forward(features);
  ASSERT_EQ(tokens.sizes(), expected.sizes());
  const double scale = expected.abs().max().item<double>();
  const double worst = (tokens - expected).abs().max().item<double>();
  RecordProperty("max_abs_diff", std::to_string(worst));  // --gtest_output=xml shows it
  EXPECT_LE(worst, 1e-4 * scale) << "max |diff| " << worst << " of max |feature| " << scale;
}

// Half precision follows the module's dtype (no silent float32 islands) and stays near the fp32
// golden. fp16's unit roundoff is u = 2^-11 ~ 4.9e-4; each of the ~20 rounded stages on the
// residual path adds at most ~u of the running magnitude and the final LayerNorm rescales by at
// most its weight's scale, so 20 u ~ 1% of the largest |feature| bounds the difference (measured:
// transformers in fp16 is 0.0102 of 4.7 = 0.22% off its fp32 golden, this implementation 0.0111).
TEST(Florence2VisionGolden, HalfPrecisionFollowsTheModule) {
  auto tiny = load_tiny();
  tiny.vision->to(torch::kHalf);
  tiny.projector->to(torch::kHalf);
  ls::io::SafetensorsReader golden(fixture("tiny-golden.safetensors"));
  auto pixels = golden.load("pixel_values");  // float32: the tower converts, as the reference's does
  auto expected = golden.load("image_features");
  torch::InferenceMode inference;
  auto tokens = tiny.projector->forward(tiny.vision->forward(pixels));
  ASSERT_EQ(tokens.scalar_type(), torch::kHalf);
  const double scale = expected.abs().max().item<double>();
  const double worst = (tokens.to(torch::kFloat) - expected).abs().max().item<double>();
  RecordProperty("max_abs_diff", std::to_string(worst));
  EXPECT_LE(worst, 20 * std::ldexp(1.0, -11) * scale) << "max |diff| " << worst << " of " << scale;
}

// transformers' Florence2VisionPositionalEmbeddingCosine1D: sin at even columns, cos at odd ones.
TEST(Florence2VisionProjector, TemporalTableIsTheInterleavedSinusoid) {
  auto table = ls::caption::florence2_temporal_table(100, 32);
  ASSERT_EQ(table.sizes(), c10::IntArrayRef({100, 32}));
  auto row0 = torch::zeros({32});
  row0.slice(0, 1, 32, 2).fill_(1.0);
  EXPECT_TRUE(torch::equal(table[0], row0));  // one frame: +0 / +1 alternating
  for (int64_t t : {1, 7, 99}) {
    for (int64_t i : {0, 5, 15}) {
      const double angle = static_cast<double>(t) * std::exp(-static_cast<double>(i) * std::log(10000.0) / 16);
      // float32 angle (up to 99 rad, ulp 7.6e-6) then float32 sin/cos
      EXPECT_NEAR(table[t][2 * i].item<double>(), std::sin(angle), 2e-5) << t << "," << i;
      EXPECT_NEAR(table[t][2 * i + 1].item<double>(), std::cos(angle), 2e-5) << t << "," << i;
    }
  }
}

TEST(Florence2VisionProjector, RefusesGridsBeyondThePositionTable) {
  Florence2VisionConfig c;
  c.embed_dim = {8, 16, 24, 32};
  c.projection_dim = 16;
  c.max_position_embeddings = 4;
  Florence2Projector projector(c);
  torch::InferenceMode inference;
  EXPECT_EQ(projector->forward(torch::zeros({1, 32, 4, 3})).sizes(), c10::IntArrayRef({1, 13, 16}));
  auto message = ls::test::error_of([&] { projector->forward(torch::zeros({1, 32, 5, 3})); });
  EXPECT_NE(message.find("5x3 feature grid exceeds the learned position table's 4x4"), std::string::npos) << message;
}

void expect_same_keys(const std::string& what, const std::map<std::string, std::vector<int64_t>>& expected,
                      torch::nn::Module& module, const std::string& prefix) {
  std::map<std::string, std::vector<int64_t>> actual;
  for (const auto& p : module.named_parameters(true)) actual[prefix + p.key()] = p.value().sizes().vec();
  for (const auto& b : module.named_buffers(true)) actual[prefix + b.key()] = b.value().sizes().vec();
  for (const auto& [name, shape] : expected) {
    if (name.rfind(prefix, 0) != 0) continue;
    auto it = actual.find(name);
    if (it == actual.end()) {
      ADD_FAILURE() << what << ": transformers has " << name << ", lorastudio does not";
    } else {
      EXPECT_EQ(it->second, shape) << what << ": " << name;
    }
  }
  for (const auto& [name, shape] : actual)
    EXPECT_TRUE(expected.count(name)) << what << ": lorastudio has " << name << ", transformers does not";
}

struct RealSize {
  std::string name;
  std::vector<int64_t> embed_dim, heads;
  int64_t projection_dim;
};

TEST(Florence2VisionKeys, RealSizeNamesAndShapesEqualTransformers) {
  const std::vector<RealSize> sizes = {{"base", {128, 256, 512, 1024}, {4, 8, 16, 32}, 768},
                                       {"large", {256, 512, 1024, 2048}, {8, 16, 32, 64}, 1024}};
  for (const auto& s : sizes) {
    auto expected = ls::test::read_key_shapes(fixture("keys") / (s.name + "-transformers.txt"));
    ASSERT_GT(expected.size(), 406u) << s.name;  // the tower's 400 + the projector's 6 + the language model's
    Florence2VisionConfig c;
    c.depths = {1, 1, 9, 1};
    c.embed_dim = s.embed_dim;
    c.num_heads = s.heads;
    c.num_groups = s.heads;
    c.projection_dim = s.projection_dim;
    ls::nn::SkipInitGuard skip;  // shapes only
    Florence2Vision vision(c);
    Florence2Projector projector(c);
    // 4 conv embeddings x 4 tensors + 12 blocks x 2 halves x 16 tensors, and the projector's 6.
    EXPECT_EQ(vision->named_parameters(true).size(), 4u * 4 + 12 * 2 * 16) << s.name;
    expect_same_keys(s.name, expected, *vision, "model.vision_tower.");
    expect_same_keys(s.name, expected, *projector, "model.multi_modal_projector.");
  }
}

}  // namespace florence2_vision_test
