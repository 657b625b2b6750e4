// v-prediction sampling: the denoiser's output scalings turn the training target's velocity back
// into x0 exactly (so a model trained with v_parameterization samples with this denoiser), on both
// schedules; what a model file says about its prediction (ComfyUI's "v_pred" / "ztsnr" markers,
// kohya's modelspec.prediction_type) and the user's override.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/model_prediction.h"
#include "models/noise_schedule.h"
#include "sample/cfg_denoiser.h"
#include "support/support.h"

namespace ls {
namespace {

TEST(VPrediction, DenoiserInvertsTheTrainingVelocity) {
  for (bool ztsnr : {false, true}) {
    SCOPED_TRACE(ztsnr);
    const models::NoiseSchedule plain = models::NoiseSchedule::sdxl();
    const models::NoiseSchedule s = ztsnr ? plain.zero_terminal_snr() : plain;
    torch::manual_seed(4);
    const auto x0 = torch::randn({3, 4, 5, 6}, torch::kDouble), eps = torch::randn({3, 4, 5, 6}, torch::kDouble);
    const auto t = torch::tensor({3, 400, 990}, torch::kLong);
    // The trainer's target, and the VE-convention input k-diffusion samples with (x = x0 + sigma eps).
    const auto v = s.velocity(x0, eps, t);
    const auto sigma = ((1 - s.alphas_cumprod.to(torch::kDouble)) / s.alphas_cumprod.to(torch::kDouble))
                           .sqrt()
                           .index_select(0, t);
    const auto x = x0 + sigma.reshape({-1, 1, 1, 1}) * eps;
    EXPECT_TRUE(test::all_close(sample::v_to_denoised(x, sigma, v), x0, 1e-6, 1e-6));
  }
}

TEST(VPrediction, ModelFilesSayWhatTheyPredict) {
  test::TempDir dir;
  const auto w = torch::zeros({1});
  io::save_safetensors(dir / "eps.safetensors", {{"x", w}}, {});
  io::save_safetensors(dir / "v.safetensors", {{"x", w}, {"v_pred", torch::zeros({0})}}, {});
  io::save_safetensors(dir / "vz.safetensors", {{"x", w}, {"v_pred", torch::zeros({0})}, {"ztsnr", torch::zeros({0})}}, {});
  io::save_safetensors(dir / "spec.safetensors", {{"x", w}}, {{"modelspec.prediction_type", "v"}});
  using P = models::ModelPrediction;
  EXPECT_EQ(models::detect_prediction((dir / "eps.safetensors").string()), (P{false, false}));
  EXPECT_EQ(models::detect_prediction((dir / "v.safetensors").string()), (P{true, false}));
  EXPECT_EQ(models::detect_prediction((dir / "vz.safetensors").string()), (P{true, true}));
  EXPECT_EQ(models::detect_prediction((dir / "spec.safetensors").string()), (P{true, false}));
  EXPECT_EQ(models::resolve_prediction("epsilon", (dir / "vz.safetensors").string()), (P{false, false}));
  EXPECT_EQ(models::resolve_prediction("v_zsnr", (dir / "eps.safetensors").string()), (P{true, true}));
  EXPECT_EQ(models::resolve_prediction("auto", (dir / "vz.safetensors").string()), (P{true, true}));
  EXPECT_NE(test::error_of([&] { models::resolve_prediction("vpred", ""); }).find("auto, epsilon, v, v_zsnr"),
            std::string::npos);
  EXPECT_EQ(models::prediction_name(P{true, true}), "v_zsnr");
  EXPECT_EQ(models::prediction_name(P{false, false}), "epsilon");
}

}  // namespace
}  // namespace ls
