// kohya's loss weights against kohya's own values (shared/fixtures/min_snr.json), noise offset against
// kohya's apply_noise_offset output (noise_offset.safetensors, same torch seeds), and diffusion_loss
// against a float64 hand computation and finite differences.
#include <fstream>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "support/support.h"
#include "train/loss.h"
#include "train/train_noise.h"
#include "models/noise_schedule.h"

namespace {

ls::train::LossOptions loss_test_snr_options(double gamma) {
  ls::train::LossOptions o;
  o.min_snr_gamma = gamma;
  return o;
}

using ls::models::NoiseSchedule;

const NoiseSchedule& schedule() {
  static const NoiseSchedule s = NoiseSchedule::sdxl();
  return s;
}

const nlohmann::json& min_snr_json() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(ls::test::kFixturesDir) + "/min_snr.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

// A JSON list of float32 values written as doubles -> float32 tensor (exact), or float64.
at::Tensor json_tensor(const nlohmann::json& list, at::ScalarType dtype = at::kFloat) {
  return at::tensor(list.get<std::vector<double>>(), at::kDouble).to(dtype);
}

at::Tensor long_tensor(const std::vector<int64_t>& v) { return at::tensor(v, at::kLong); }

using ls::test::bit_equal;

// The fixture was made with an older torch, whose float32 linspace puts 233 of the 1000 SDXL betas
// one ulp away from torch 2.11's (tests/sample/test_noise_schedule.cpp): what is computed from the
// schedule is held to the fixture README's tolerances until the fixture is regenerated.
TEST(GoldenMinSnr, WeightsAtListedTimestepsAreBitExact) {
  const auto& j = min_snr_json();
  const double gamma = j.at("gamma").get<double>();
  const auto t = long_tensor(j.at("timesteps").get<std::vector<int64_t>>());
  const auto snr = ls::train::snr_at(schedule(), t);
  EXPECT_TRUE(ls::test::all_close(snr, json_tensor(j.at("snr")), 2e-4, 0));
  EXPECT_TRUE(ls::test::all_close(ls::train::min_snr_weight(snr, gamma), json_tensor(j.at("min_snr_weight_eps")), 2e-4, 0));
  EXPECT_TRUE(ls::test::all_close(ls::train::debiased_weight(snr), json_tensor(j.at("debiased_weight_eps")), 2e-4, 0));
  const auto& extra = j.at("extra");
  EXPECT_TRUE(ls::test::all_close(ls::train::min_snr_weight(snr, gamma, true), json_tensor(extra.at("min_snr_weight_v")), 2e-4, 0));
  EXPECT_TRUE(ls::test::all_close(ls::train::debiased_weight(snr, true), json_tensor(extra.at("debiased_weight_v")), 2e-4, 0));
  EXPECT_TRUE(ls::test::all_close(ls::train::v_pred_like_noise_pred_scale(snr),
                                  json_tensor(extra.at("scale_v_pred_loss_like_noise_pred")), 2e-4, 0));
}

TEST(GoldenMinSnr, WeightsAtAllTimestepsAreBitExact) {
  const auto& all = min_snr_json().at("all_timesteps");
  const auto snr = ls::train::snr_at(schedule(), at::arange(1000, at::kLong));
  EXPECT_TRUE(ls::test::all_close(snr, json_tensor(all.at("snr")), 2e-4, 0));
  EXPECT_TRUE(ls::test::all_close(ls::train::min_snr_weight(snr, 5.0), json_tensor(all.at("min_snr_weight_eps")), 2e-4, 0));
  EXPECT_TRUE(ls::test::all_close(ls::train::debiased_weight(snr), json_tensor(all.at("debiased_weight_eps")), 2e-4, 0));
}

// The README tolerances against the float64 re-run (what float32 costs, not how well we copy).
TEST(GoldenMinSnr, WithinReadmeToleranceOfFloat64Rerun) {
  const auto& j = min_snr_json();
  const auto snr = ls::train::snr_at(schedule(), long_tensor(j.at("timesteps").get<std::vector<int64_t>>()));
  const auto& f64 = j.at("f64");
  EXPECT_TRUE(ls::test::all_close(snr, json_tensor(f64.at("snr"), at::kDouble), 2e-4, 0));
  EXPECT_TRUE(ls::test::all_close(ls::train::min_snr_weight(snr, 5.0),
                                  json_tensor(f64.at("min_snr_weight_eps"), at::kDouble), 2e-4, 0));
  EXPECT_TRUE(ls::test::all_close(ls::train::debiased_weight(snr),
                                  json_tensor(f64.at("debiased_weight_eps"), at::kDouble), 2e-5, 0));
}

TEST(MinSnr, HandValues) {
  const auto snr = at::tensor({0.5, 5.0, 50.0, 4000.0}, at::kDouble);
  EXPECT_TRUE(ls::test::all_close(ls::train::min_snr_weight(snr, 5.0), at::tensor({1.0, 1.0, 0.1, 5.0 / 4000}),
                                  1e-7, 0));
  EXPECT_TRUE(ls::test::all_close(ls::train::min_snr_weight(snr, 5.0, true),
                                  at::tensor({0.5 / 1.5, 5.0 / 6, 5.0 / 51, 5.0 / 4001}), 1e-7, 0));
  EXPECT_EQ(ls::train::min_snr_weight(snr, 5.0).scalar_type(), at::kFloat);  // kohya's .float()
  // SNR is capped at 1000 for the debiased weights.
  EXPECT_TRUE(ls::test::all_close(ls::train::debiased_weight(snr),
                                  at::tensor({1 / std::sqrt(0.5), 1 / std::sqrt(5.0), 1 / std::sqrt(50.0),
                                              1 / std::sqrt(1000.0)}), 1e-14, 0));
  EXPECT_TRUE(ls::test::all_close(ls::train::debiased_weight(snr, true),
                                  at::tensor({1 / 1.5, 1 / 6.0, 1 / 51.0, 1 / 1001.0}), 1e-14, 0));
  EXPECT_TRUE(ls::test::all_close(ls::train::v_pred_like_noise_pred_scale(snr),
                                  at::tensor({0.5 / 1.5, 5 / 6.0, 50 / 51.0, 1000 / 1001.0}), 1e-14, 0));
  EXPECT_THROW(ls::train::min_snr_weight(snr, 0.0), ls::Error);
  EXPECT_THROW(ls::train::snr_at(schedule(), long_tensor({0, 1000})), ls::Error);
}

const ls::io::SafetensorsReader& offset_fixture() {
  static const ls::io::SafetensorsReader reader(std::string(ls::test::kFixturesDir) + "/noise_offset.safetensors");
  return reader;
}

struct OffsetCase {
  std::string name;
  double noise_offset;
  double adaptive;  // 0 = None
};

std::vector<OffsetCase> offset_cases() {
  std::vector<OffsetCase> cases;
  for (const auto& c : min_snr_json().at("noise_offset").at("cases")) {
    const auto& a = c.at("adaptive_noise_scale");
    cases.push_back({c.at("name").get<std::string>(), c.at("noise_offset").get<double>(),
                     a.is_null() ? 0.0 : a.get<double>()});
  }
  return cases;
}

// kohya seeds torch's global CPU generator with manual_seed(777 + i) before case i; a fresh
// CPUGeneratorImpl with that seed is in the same state, so the draw and the output repeat exactly.
TEST(GoldenNoiseOffset, SameSeedReproducesKohyaOutput) {
  const auto& f = offset_fixture();
  const auto latents = f.load("latents"), noise = f.load("noise");
  const auto cases = offset_cases();
  ASSERT_EQ(cases.size(), 3u);
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    const auto seed = 777 + static_cast<uint64_t>(i);
    EXPECT_TRUE(bit_equal(at::randn({2, 4, 1, 1}, at::make_generator<at::CPUGeneratorImpl>(seed)),
                          f.load(cases[i].name + "/offset_randn")));
    const auto out = ls::train::apply_noise_offset(latents, noise, cases[i].noise_offset, cases[i].adaptive,
                                                   at::make_generator<at::CPUGeneratorImpl>(seed));
    const auto expected = f.load(cases[i].name + "/out");
    EXPECT_TRUE(ls::test::all_close(out, expected, 0, 5e-7));
    EXPECT_TRUE(bit_equal(out, expected));
  }
}

// The formula alone, in float64, with the draw the fixture stored.
TEST(GoldenNoiseOffset, FormulaWithStoredDraw) {
  const auto& f = offset_fixture();
  const auto latents = f.load("latents").to(at::kDouble), noise = f.load("noise").to(at::kDouble);
  for (const auto& c : offset_cases()) {
    SCOPED_TRACE(c.name);
    const auto draw = f.load(c.name + "/offset_randn").to(at::kDouble);
    auto offset = at::full({2, 4, 1, 1}, c.noise_offset, at::kDouble);
    if (c.adaptive != 0) {
      offset = (offset + c.adaptive * latents.mean({2, 3}, true).abs()).clamp_min(0);
    }
    EXPECT_TRUE(ls::test::all_close(noise + offset * draw, f.load(c.name + "/out"), 0, 5e-7));
    if (c.name == "adaptive_neg") {
      // The clamp to 0 the README lists for (b, c) = (0,0), (0,1), (0,3), (1,0), (1,3).
      const auto zero = (offset.flatten() == 0).to(at::kLong);
      EXPECT_TRUE(at::equal(zero, long_tensor({1, 1, 0, 1, 1, 0, 0, 1})));
    }
  }
}

TEST(NoiseOffset, ZeroOffsetDrawsNothing) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto latents = at::randn({2, 4, 3, 3}, g), noise = at::randn({2, 4, 3, 3}, g);
  auto used = at::make_generator<at::CPUGeneratorImpl>(9);
  EXPECT_TRUE(at::equal(ls::train::apply_noise_offset(latents, noise, 0.0, 0.01, used), noise));
  EXPECT_TRUE(at::equal(at::randn({4}, used), at::randn({4}, at::make_generator<at::CPUGeneratorImpl>(9))));
  // The offset is constant over H, W: out - noise is one value per (b, c).
  const auto out = ls::train::apply_noise_offset(latents, noise, 0.1, 0.0, used);
  const auto delta = out - noise;  // [2, 4, 3, 3]
  EXPECT_TRUE(ls::test::all_close(delta, delta.select(2, 0).select(2, 0).view({2, 4, 1, 1}).expand_as(delta),
                                  0, 1e-7));
  EXPECT_THROW(ls::train::apply_noise_offset(latents.flatten(2), noise.flatten(2), 0.1, 0, used), ls::Error);
}

// mean over C, H, W of (pred - target)^2, times loss weight, times min(snr, gamma) / snr, batch mean.
struct HandLoss {
  double loss;
  std::vector<double> per_sample;
};

HandLoss hand_loss(const at::Tensor& pred, const at::Tensor& target, const std::vector<double>& weights,
                   const std::vector<int64_t>& t, double gamma) {
  const auto p = pred.to(at::kDouble), q = target.to(at::kDouble);
  HandLoss out{0, {}};
  for (int64_t b = 0; b < pred.size(0); ++b) {
    const auto ub = static_cast<size_t>(b);
    double value = (p[b] - q[b]).pow(2).mean().item<double>() * weights[ub];
    if (gamma > 0) {
      const double snr = schedule().snr[t[ub]].item<double>();
      value *= std::min(snr, gamma) / snr;
    }
    out.per_sample.push_back(value);
    out.loss += value / static_cast<double>(pred.size(0));
  }
  return out;
}

TEST(DiffusionLoss, MatchesHandComputation) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto pred = at::randn({3, 4, 5, 5}, g), target = at::randn({3, 4, 5, 5}, g);
  const std::vector<double> weights = {1.0, 1.0, 0.5};  // the last one a regularisation image
  const std::vector<int64_t> t = {10, 300, 900};        // snr 103.5 (above gamma), ~1.4, 0.02
  const auto w_tensor = at::tensor(weights, at::kDouble).to(at::kFloat);
  for (double gamma : {0.0, 5.0}) {
    SCOPED_TRACE(gamma);
    const auto expected = hand_loss(pred, target, weights, t, gamma);
    const auto parts = ls::train::diffusion_loss(pred, target, w_tensor, long_tensor(t), schedule(), loss_test_snr_options(gamma));
    EXPECT_EQ(parts.loss.dim(), 0);
    EXPECT_EQ(parts.loss.scalar_type(), at::kFloat);
    EXPECT_NEAR(parts.loss.item<double>(), expected.loss, 1e-6 * expected.loss);
    EXPECT_TRUE(ls::test::all_close(parts.per_sample, at::tensor(expected.per_sample), 1e-6, 0));
    // float64 inputs stay float64.
    const auto parts64 = ls::train::diffusion_loss(pred.to(at::kDouble), target.to(at::kDouble), w_tensor,
                                                   long_tensor(t), schedule(), loss_test_snr_options(gamma));
    EXPECT_EQ(parts64.loss.scalar_type(), at::kDouble);
    EXPECT_NEAR(parts64.loss.item<double>(), expected.loss, 2e-7 * expected.loss);  // float32 snr weight
  }
  // min-SNR only changes t = 10 (snr 103.5 > 5): the other two samples keep their weight.
  const auto off = ls::train::diffusion_loss(pred, target, w_tensor, long_tensor(t), schedule(), loss_test_snr_options(0));
  const auto on = ls::train::diffusion_loss(pred, target, w_tensor, long_tensor(t), schedule(), loss_test_snr_options(5));
  EXPECT_TRUE(at::equal(off.per_sample.slice(0, 1), on.per_sample.slice(0, 1)));
  EXPECT_LT(on.per_sample[0].item<double>(), 0.05 * off.per_sample[0].item<double>());
}

TEST(DiffusionLoss, BFloat16PredictionIsUpcastToFloat32) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(4);
  const auto pred = at::randn({2, 4, 3, 3}, g).to(at::kBFloat16), target = at::randn({2, 4, 3, 3}, g);
  const auto weights = at::ones({2});
  const auto t = long_tensor({5, 600});
  const auto parts = ls::train::diffusion_loss(pred, target, weights, t, schedule(), loss_test_snr_options(5));
  EXPECT_EQ(parts.loss.scalar_type(), at::kFloat);
  const auto expected = hand_loss(pred.to(at::kFloat), target, {1, 1}, {5, 600}, 5);
  EXPECT_NEAR(parts.loss.item<double>(), expected.loss, 1e-6 * expected.loss);
}

TEST(DiffusionLoss, GradientMatchesFiniteDifferences) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(8);
  const auto pred = at::randn({3, 2, 3, 3}, g).to(at::kDouble);
  const auto target = at::randn({3, 2, 3, 3}, g).to(at::kDouble);
  const auto weights = at::tensor({1.0, 0.7, 1.0});
  const auto t = long_tensor({3, 250, 999});
  auto per_sample = [&](const torch::Tensor& x) {
    return ls::train::diffusion_loss(x, target, weights, t, schedule(), loss_test_snr_options(5)).per_sample;
  };
  EXPECT_TRUE(ls::test::gradcheck(per_sample, pred));
  auto scalar = [&](const torch::Tensor& x) {
    return ls::train::diffusion_loss(x, target, weights, t, schedule(), loss_test_snr_options(5)).loss;
  };
  EXPECT_TRUE(ls::test::gradcheck(scalar, pred));
  // Closed form: d loss / d pred = 2 (pred - target) * w_b * snr_w_b / (B * C * H * W).
  const auto x = pred.clone().requires_grad_(true);
  ls::train::diffusion_loss(x, target, weights, t, schedule(), loss_test_snr_options(5)).loss.backward();
  const auto snr_w = ls::train::min_snr_weight(ls::train::snr_at(schedule(), t), 5).to(at::kDouble);
  const auto scale = (weights.to(at::kDouble) * snr_w).view({3, 1, 1, 1}) * 2 / (3 * 18);
  EXPECT_TRUE(ls::test::all_close(x.grad(), scale * (pred - target), 1e-12, 1e-15));
}

TEST(DiffusionLoss, RejectsMismatchedInputs) {
  const auto a = at::zeros({2, 4, 3, 3});
  const auto w = at::ones({2});
  const auto t = long_tensor({1, 2});
  EXPECT_THROW(ls::train::diffusion_loss(a, at::zeros({2, 4, 3, 2}), w, t, schedule(), loss_test_snr_options(0)), ls::Error);
  EXPECT_THROW(ls::train::diffusion_loss(a, a, at::ones({3}), t, schedule(), loss_test_snr_options(0)), ls::Error);
  EXPECT_THROW(ls::train::diffusion_loss(a, a, w, long_tensor({1}), schedule(), loss_test_snr_options(0)), ls::Error);
  EXPECT_THROW(ls::train::diffusion_loss(a, a, w, t, schedule(), loss_test_snr_options(-1)), ls::Error);
  EXPECT_THROW(ls::train::diffusion_loss(a, a, w, long_tensor({1, 1000}), schedule(), loss_test_snr_options(5)), ls::Error);
}

}  // namespace
