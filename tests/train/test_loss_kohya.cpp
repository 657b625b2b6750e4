// The loss and noise options against kohya's own functions, executed from sd-scripts at a pinned
// commit (tests/fixtures/loss/kohya_loss.safetensors, made by scripts/make-loss-fixtures): zero
// terminal SNR, the v-prediction target, huber thresholds and the four elementwise losses, the alpha
// mask, post_process_loss's timestep weights, pyramid (multires) noise and the random-strength /
// adaptive noise offset, each fed kohya's own draws. Tolerances: float32 elementwise arithmetic
// (a few ulp: 1e-6 relative), 1e-5 where a reduction over the tensor (std) enters, T * 2^-24 for
// the 1000-term cumulative products of the schedule.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "io/safetensors.h"
#include "models/noise_schedule.h"
#include "support/support.h"
#include "train/loss.h"
#include "train/train_noise.h"

namespace ls::train {
namespace {

const io::SafetensorsReader& kohya_loss_fixture() {
  static const io::SafetensorsReader reader(
      (std::filesystem::path(test::kSourceDir) / "tests/fixtures/loss/kohya_loss.safetensors").string());
  return reader;
}

const nlohmann::json& kohya_loss_cases() {
  static const nlohmann::json cases = nlohmann::json::parse(kohya_loss_fixture().metadata().at("cases"));
  return cases;
}

at::Tensor fx(const std::string& key) { return kohya_loss_fixture().load(key); }

const models::NoiseSchedule& plain_schedule() {
  static const models::NoiseSchedule s = models::NoiseSchedule::sdxl();
  return s;
}

const models::NoiseSchedule& zsnr_schedule() {
  static const models::NoiseSchedule s = models::NoiseSchedule::sdxl().zero_terminal_snr();
  return s;
}

constexpr double kElementwise = 1e-6;
constexpr double kCumulative = 1000.0 / (1 << 24);  // T float32 roundings in a cumulative product

TEST(KohyaZeroTerminalSnr, ScheduleMatchesKohyasFix) {
  const auto& z = zsnr_schedule();
  EXPECT_TRUE(test::all_close(z.alphas_cumprod, fx("ztsnr/alphas_cumprod"), kCumulative, 1e-12));
  EXPECT_TRUE(test::all_close(z.betas, fx("ztsnr/betas"), 0, kCumulative));
  EXPECT_EQ(z.alphas_cumprod[-1].item<double>(), 0.0);  // t = 999 is pure noise
  // kohya computes all_snr before the fix: the weights keep the original SNR.
  EXPECT_TRUE(test::bit_equal(z.snr, plain_schedule().snr));
  EXPECT_TRUE(test::all_close(z.snr, fx("ztsnr/all_snr"), kElementwise, 0));
  // Sampling sees a finite sigma_max (A1111 / ComfyUI's terminal alpha_bar 4.8973451890853435e-08).
  EXPECT_NEAR(z.sigmas[-1].item<double>(), std::sqrt((1 - 4.8973451890853435e-08) / 4.8973451890853435e-08), 1e-2);
  EXPECT_TRUE(z.zero_terminal);
  EXPECT_THROW(z.zero_terminal_snr(), Error);
}

TEST(KohyaVelocity, TargetAndForwardProcessMatchDiffusers) {
  const auto x0 = fx("x0"), noise = fx("noise"), t = fx("t");
  for (const char* name : {"plain", "ztsnr"}) {
    SCOPED_TRACE(name);
    const auto& s = std::string(name) == "plain" ? plain_schedule() : zsnr_schedule();
    EXPECT_TRUE(test::all_close(s.velocity(x0, noise, t), fx(std::string(name) + "/velocity"), kElementwise, 1e-7));
    EXPECT_TRUE(test::all_close(s.add_noise(x0, noise, t), fx(std::string(name) + "/add_noise"), kElementwise, 1e-7));
  }
  // At zero terminal SNR the velocity at t = 999 is -x0 exactly.
  const auto v = zsnr_schedule().velocity(x0, noise, t);
  EXPECT_TRUE(torch::equal(v[2], -x0[2]));
}

TEST(KohyaHuber, ThresholdsOfEverySchedule) {
  const auto t = fx("t_many");
  for (const auto& c : kohya_loss_cases().at("huber")) {
    SCOPED_TRACE(c.at("key").get<std::string>());
    LossOptions o;
    o.type = LossType::kHuber;
    o.huber_schedule = parse_huber_schedule(c.at("schedule").get<std::string>());
    o.huber_c = c.at("c").get<double>();
    o.huber_scale = c.at("scale").get<double>();
    const auto& s = c.at("ztsnr").get<bool>() ? zsnr_schedule() : plain_schedule();
    EXPECT_TRUE(test::all_close(huber_threshold(o, t, s), fx(c.at("key").get<std::string>()), kElementwise, 0));
  }
  LossOptions l2;
  EXPECT_FALSE(huber_threshold(l2, t, plain_schedule()).defined());  // kohya: None for l1 / l2
}

TEST(KohyaElementwiseLoss, EveryLossType) {
  const auto pred = fx("pred"), noise = fx("noise"), c = fx("elementwise/huber_c");
  for (const char* name : {"l2", "l1", "huber", "smooth_l1"}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(test::all_close(elementwise_loss(pred, noise, parse_loss_type(name), c),
                                fx(std::string("elementwise/") + name), kElementwise, 1e-7));
  }
  EXPECT_THROW(parse_loss_type("mse"), Error);
  EXPECT_THROW(parse_huber_schedule("linear"), Error);
}

TEST(KohyaMaskedLoss, AlphaMaskAreaResized) {
  const auto alpha = fx("mask/alpha");  // [B, H, W] at image resolution
  EXPECT_TRUE(test::all_close(apply_loss_mask(fx("elementwise/l2"), alpha.unsqueeze(1)), fx("mask/loss"),
                              kElementwise, 1e-7));
}

TEST(KohyaPostProcessLoss, TimestepWeightsInKohyasOrder) {
  const auto in = fx("post/in"), t = fx("t_many");
  for (const auto& c : kohya_loss_cases().at("post")) {
    SCOPED_TRACE(c.at("key").get<std::string>());
    LossOptions o;
    o.min_snr_gamma = c.at("min_snr_gamma").get<double>();
    o.v_prediction = c.at("v_parameterization").get<bool>();
    o.scale_v_pred_loss_like_noise_pred = c.at("scale_v_pred_loss_like_noise_pred").get<bool>();
    o.v_pred_like_loss = c.at("v_pred_like_loss").get<double>();
    o.debiased_estimation = c.at("debiased_estimation_loss").get<bool>();
    const auto& s = c.at("ztsnr").get<bool>() ? zsnr_schedule() : plain_schedule();
    EXPECT_TRUE(test::all_close(timestep_weighted(in, t, s, o), fx(c.at("key").get<std::string>()), kElementwise, 0));
  }
}

TEST(KohyaPyramidNoise, SameDrawsSameNoise) {
  for (const auto& c : kohya_loss_cases().at("pyramid")) {
    const std::string key = c.at("key").get<std::string>();
    SCOPED_TRACE(key);
    const auto noise = fx(key + "/noise");
    const auto u_tensor = fx(key + "/u");
    const std::vector<double> u(u_tensor.data_ptr<double>(), u_tensor.data_ptr<double>() + u_tensor.numel());
    const auto sizes = pyramid_sizes(noise.size(2), noise.size(3), u);
    ASSERT_EQ(static_cast<int>(sizes.size()), c.at("octaves").get<int>());
    std::vector<PyramidOctave> octaves;
    for (size_t i = 0; i < sizes.size(); ++i) {
      const auto draw = fx(key + "/draw" + std::to_string(i));
      EXPECT_EQ(draw.size(2), sizes[i].first);
      EXPECT_EQ(draw.size(3), sizes[i].second);
      octaves.push_back({u[i] * 2 + 2, draw});
    }
    const auto out = pyramid_noise(noise, octaves, c.at("discount").get<double>());
    EXPECT_TRUE(test::all_close(out, fx(key + "/out"), 1e-5, 1e-6));
    EXPECT_TRUE(torch::equal(noise, fx(key + "/noise")));  // the input is not modified
  }
}

TEST(KohyaNoiseOffset, RandomStrengthAndAdaptiveScale) {
  for (const auto& c : kohya_loss_cases().at("offset")) {
    const std::string key = c.at("key").get<std::string>();
    SCOPED_TRACE(key);
    const double adaptive = c.at("adaptive_noise_scale").is_null() ? 0.0 : c.at("adaptive_noise_scale").get<double>();
    const auto out = offset_noise(fx(key + "/latents"), fx(key + "/noise"), fx(key + "/draw"),
                                  fx(key + "/strength"), adaptive);
    EXPECT_TRUE(test::all_close(out, fx(key + "/out"), kElementwise, 1e-7));
  }
}

}  // namespace
}  // namespace ls::train
