// The diffusers key maps over full-size SDXL against diffusers' own converter: every line of
// tests/fixtures/diffusers/keys/sdxl_{unet,vae}_sgm_to_diffusers.txt is what diffusers 0.42.1's
// convert_ldm_{unet,vae}_checkpoint made of one single-file key; both directions must agree with it,
// and the shapes of a full-size diffusers model (keys/sdxl_*_diffusers.txt) must map to the
// single-file shapes of shared/fixtures/keys.
#include <fstream>
#include <set>

#include "models/key_map_diffusers_unet.h"
#include "models/key_map_diffusers_vae.h"
#include "models/diffusers_fixture.h"

namespace {

using ls::models::KeyMap;

std::vector<std::pair<std::string, std::string>> diffusers_reference_pairs(const std::string& file) {
  std::ifstream in(ls::test::diffusers_fixture_dir() / "keys" / file);
  EXPECT_TRUE(in.good()) << file;
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string a, b; in >> a >> b;) out.emplace_back(a, b);
  return out;
}

void expect_map_equals_diffusers(const KeyMap& map, const std::string& pairs_file, size_t count) {
  const auto pairs = diffusers_reference_pairs(pairs_file);
  ASSERT_EQ(pairs.size(), count);
  size_t bad = 0;
  for (const auto& [sgm, diffusers] : pairs) {
    const auto forward = map.to_lorastudio(diffusers);
    const auto back = map.to_diffusers(sgm);
    if (!forward || forward->key != sgm || !back || back->key != diffusers) {
      if (++bad <= 5)
        ADD_FAILURE() << diffusers << " -> " << (forward ? forward->key : "(none)") << ", " << sgm << " -> "
                      << (back ? back->key : "(none)");
    }
  }
  EXPECT_EQ(bad, 0u);
}

void expect_shapes_map(const KeyMap& map, const std::string& diffusers_file, const std::string& sgm_file,
                       const std::string& prefix) {
  const auto ours = ls::test::read_key_shapes(ls::test::diffusers_fixture_dir() / "keys" / diffusers_file);
  const auto expected = ls::test::fixture_key_shapes(sgm_file, prefix);
  ASSERT_EQ(ours.size(), expected.size());
  for (const auto& [name, shape] : ours) {
    const auto m = map.to_lorastudio(name);
    ASSERT_TRUE(m.has_value()) << name;
    ASSERT_TRUE(expected.count(m->key)) << name << " -> " << m->key;
    EXPECT_EQ(ls::models::to_lorastudio_shape(shape, m->transform), expected.at(m->key)) << name;
  }
}

TEST(KeyMapDiffusers, SdxlUnetEqualsDiffusersConverter) {
  expect_map_equals_diffusers(ls::models::diffusers_unet_map(ls::models::SdxlUnetConfig{}),
                              "sdxl_unet_sgm_to_diffusers.txt", 1680);
}

TEST(KeyMapDiffusers, SdxlVaeEqualsDiffusersConverter) {
  expect_map_equals_diffusers(ls::models::diffusers_vae_map(ls::models::VaeConfig{}), "sdxl_vae_sgm_to_diffusers.txt",
                              248);
}

TEST(KeyMapDiffusers, FullSizeDiffusersShapesAreSingleFileShapes) {
  expect_shapes_map(ls::models::diffusers_unet_map(ls::models::SdxlUnetConfig{}), "sdxl_unet_diffusers.txt",
                    "sdxl_unet_keys.txt", "model.diffusion_model.");
  expect_shapes_map(ls::models::diffusers_vae_map(ls::models::VaeConfig{}), "sdxl_vae_diffusers.txt", "vae_keys.txt",
                    "first_stage_model.");
}

TEST(KeyMapDiffusers, LegacyVaeAttentionNamesAreReadNotWritten) {
  const KeyMap map = ls::models::diffusers_vae_map(ls::models::VaeConfig{});
  const auto old = map.to_lorastudio("encoder.mid_block.attentions.0.proj_attn.weight");
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->key, "encoder.mid.attn_1.proj_out.weight");
  EXPECT_EQ(old->transform, ls::models::TensorTransform::kConv1x1);
  EXPECT_EQ(map.to_diffusers("encoder.mid.attn_1.proj_out.weight")->key, "encoder.mid_block.attentions.0.to_out.0.weight");
  EXPECT_FALSE(map.to_lorastudio("encoder.mid_block.attentions.0.to_q").has_value());  // no tensor name
}

TEST(KeyMapDiffusers, Te2ProjectionIsTransposed) {
  const auto m = ls::models::diffusers_te2_map().to_lorastudio("text_projection.weight");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->key, "text_projection");
  const auto t = torch::arange(6, torch::kFloat).reshape({2, 3});
  EXPECT_TRUE(torch::equal(ls::models::to_lorastudio_tensor(t, m->transform), t.t()));
  EXPECT_EQ(ls::models::diffusers_te1_map().to_lorastudio("text_model.final_layer_norm.bias")->key,
            "text_model.final_layer_norm.bias");
}

}  // namespace
