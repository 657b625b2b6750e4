// The loss and noise options in a real training run on the tiny model: each option changes the first
// step's loss (an option that were read and then ignored would not), every option together trains
// with finite losses and says so in the LoRA metadata as kohya writes it, and `debug train-step`
// with the same options gives the trainer's first loss. The formulas themselves are held to
// kohya's own functions in test_loss_kohya.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/strings.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "support/support.h"
#include "support/tiny_training.h"
#include "train/train_step.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace ls {
namespace {

class TrainObjectiveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);  // ctest runs two binaries at once on two cores
    tiny_ = new test::TinyTraining();
  }
  static void TearDownTestSuite() { delete tiny_; }

  static train::TrainConfig base_config(const std::string& out) { return tiny_->config(out); }

  // The first micro-batch's loss of a one-step run.
  static double first_loss(const std::function<void(train::TrainConfig&)>& change) {
    test::TempDir out;
    train::TrainConfig c = base_config(out.path().string());
    change(c);
    double loss = std::nan("");
    train::TrainHooks hooks;
    hooks.after_backward = [&](const train::StepInputs&, double value, lora::LoraNetworkImpl&) {
      if (std::isnan(loss)) loss = value;
    };
    train::run_training(c, hooks);
    return loss;
  }

  static test::TinyTraining* tiny_;
};
test::TinyTraining* TrainObjectiveTest::tiny_ = nullptr;

TEST_F(TrainObjectiveTest, EveryOptionChangesTheFirstLoss) {
  const double plain = first_loss([](train::TrainConfig&) {});
  ASSERT_TRUE(std::isfinite(plain));
  EXPECT_EQ(first_loss([](train::TrainConfig&) {}), plain);  // deterministic, so a difference means something
  const std::vector<std::pair<std::string, std::function<void(train::TrainConfig&)>>> options = {
      {"loss_type l1", [](train::TrainConfig& c) { c.loss_type = "l1"; }},
      {"loss_type huber", [](train::TrainConfig& c) { c.loss_type = "huber"; }},
      {"loss_type smooth_l1 constant", [](train::TrainConfig& c) {
         c.loss_type = "smooth_l1";
         c.huber_schedule = "constant";
       }},
      {"v_parameterization", [](train::TrainConfig& c) { c.v_parameterization = true; }},
      {"zero_terminal_snr", [](train::TrainConfig& c) {
         c.v_parameterization = true;
         c.zero_terminal_snr = true;
       }},
      {"debiased_estimation_loss", [](train::TrainConfig& c) { c.debiased_estimation_loss = true; }},
      {"v_pred_like_loss", [](train::TrainConfig& c) { c.v_pred_like_loss = 0.5; }},
      {"multires_noise_iterations", [](train::TrainConfig& c) { c.multires_noise_iterations = 4; }},
      {"ip_noise_gamma", [](train::TrainConfig& c) { c.ip_noise_gamma = 0.5; }},
      {"noise_offset_random_strength", [](train::TrainConfig& c) {
         c.noise_offset = 0.5;
         c.noise_offset_random_strength = true;
       }},
  };
  for (const auto& [name, change] : options) {
    const double loss = first_loss(change);
    EXPECT_TRUE(std::isfinite(loss)) << name;
    EXPECT_NE(loss, plain) << name;
  }
  // The adaptive scale on top of the same offset changes it again.
  const double offset = first_loss([](train::TrainConfig& c) { c.noise_offset = 0.5; });
  const double adaptive = first_loss([](train::TrainConfig& c) {
    c.noise_offset = 0.5;
    c.adaptive_noise_scale = 2.0;
  });
  EXPECT_NE(offset, plain);
  EXPECT_NE(adaptive, offset);
}

TEST_F(TrainObjectiveTest, KohyasRulesRefuseContradictions) {
  test::TempDir out;
  train::TrainConfig c = base_config(out.path().string());
  c.adaptive_noise_scale = 0.1;
  EXPECT_NE(test::error_of([&] { train::validate(c); }).find("adaptive_noise_scale requires noise_offset"),
            std::string::npos);
  c = base_config(out.path().string());
  c.scale_v_pred_loss_like_noise_pred = true;
  EXPECT_NE(test::error_of([&] { train::validate(c); }).find("only with v_parameterization"), std::string::npos);
  c.v_parameterization = true;
  c.v_pred_like_loss = 0.1;
  EXPECT_NE(test::error_of([&] { train::validate(c); }).find("cannot be enabled with v_parameterization"),
            std::string::npos);
  c = base_config(out.path().string());
  c.loss_type = "mse";
  EXPECT_NE(test::error_of([&] { train::validate(c); }).find("l2, l1, huber, smooth_l1"), std::string::npos);
  c.loss_type = "huber";
  c.huber_c = 0;
  EXPECT_NE(test::error_of([&] { train::validate(c); }).find("huber_c must be > 0"), std::string::npos);
}

// Everything on at once, through `debug train-step` too: the same inputs (the trainer's noise, ip
// noise, timesteps) and options give the trainer's loss.
TEST_F(TrainObjectiveTest, AllOptionsTrainAndDebugTrainStepAgrees) {
  test::TempDir out;
  train::TrainConfig c = base_config(out.path().string());
  c.network_train_unet_only = true;  // train-step takes the context as given: a UNet LoRA
  c.max_train_steps = 2;
  c.loss_type = "huber";
  c.huber_schedule = "snr";
  c.huber_c = 0.2;
  c.v_parameterization = true;
  c.zero_terminal_snr = true;
  c.scale_v_pred_loss_like_noise_pred = true;
  c.min_snr_gamma = 5;
  c.debiased_estimation_loss = true;
  c.noise_offset = 0.05;
  c.noise_offset_random_strength = true;
  c.adaptive_noise_scale = 0.01;
  c.multires_noise_iterations = 3;
  c.multires_noise_discount = 0.25;
  c.ip_noise_gamma = 0.1;
  c.ip_noise_gamma_random_strength = true;
  const fs::path init = out / "init.safetensors", inputs = out / "inputs.safetensors";
  std::vector<double> losses;
  train::TrainHooks hooks;
  hooks.after_backward = [&](const train::StepInputs& in, double loss, lora::LoraNetworkImpl& network) {
    if (losses.empty()) {
      ASSERT_TRUE(in.ip_noise.defined());
      lora::save_lora(init.string(), network, torch::kFloat, {});
      io::save_safetensors(inputs, {{"latents", in.latents}, {"context", in.context}, {"y", in.y},
                                    {"noise", in.noise}, {"timesteps", in.timesteps}, {"ip_noise", in.ip_noise}},
                           {});
    }
    losses.push_back(loss);
  };
  const train::TrainResult r = train::run_training(c, hooks);
  ASSERT_EQ(r.steps_done, 2);
  for (double l : losses) EXPECT_TRUE(std::isfinite(l));

  const auto meta = io::SafetensorsReader(r.final_lora).metadata();
  EXPECT_EQ(meta.at("ss_loss_type"), "huber");
  EXPECT_EQ(meta.at("ss_huber_schedule"), "snr");
  EXPECT_EQ(meta.at("ss_huber_c"), "0.2");
  EXPECT_EQ(meta.at("ss_huber_scale"), "1.0");
  EXPECT_EQ(meta.at("ss_zero_terminal_snr"), "True");
  EXPECT_EQ(meta.at("ss_debiased_estimation"), "True");
  EXPECT_EQ(meta.at("ss_noise_offset"), "0.05");
  EXPECT_EQ(meta.at("ss_noise_offset_random_strength"), "True");
  EXPECT_EQ(meta.at("ss_adaptive_noise_scale"), "0.01");
  EXPECT_EQ(meta.at("ss_multires_noise_iterations"), "3");
  EXPECT_EQ(meta.at("ss_multires_noise_discount"), "0.25");
  EXPECT_EQ(meta.at("ss_ip_noise_gamma"), "0.1");
  EXPECT_EQ(meta.at("ss_ip_noise_gamma_random_strength"), "True");
  EXPECT_EQ(meta.at("ss_min_snr_gamma"), "5.0");
  EXPECT_EQ(meta.at("modelspec.prediction_type"), "v");

  setenv("OMP_NUM_THREADS", "1", 1);
  const auto cmd = test::run_lorastudio(str_cat(
      "debug train-step --model ", tiny_->checkpoint, " --lora-init ", init.string(),
      " --inputs ", inputs.string(), " --output ", (out / "step.safetensors").string(),
      " --learning_rate 1e-3 --loss_type huber --huber_schedule snr --huber_c 0.2 --v_parameterization",
      " --zero_terminal_snr --scale_v_pred_loss_like_noise_pred --min_snr_gamma 5 --debiased_estimation_loss"));
  unsetenv("OMP_NUM_THREADS");
  ASSERT_EQ(cmd.exit_code, 0) << cmd.out;
  const double step_loss = io::SafetensorsReader((out / "step.safetensors").string()).load("loss").item<double>();
  EXPECT_NEAR(step_loss, losses.front(), 1e-5 * std::abs(losses.front()));
}

// A dataset TOML of two 64x64 RGBA images whose alpha is `alpha` everywhere, with alpha_mask (or
// conditioning_data_dir) set as asked.
std::string write_alpha_dataset(const fs::path& dir, int alpha, const std::string& extra_subset_keys) {
  fs::create_directories(dir / "img");
  for (int i = 0; i < 2; ++i) {
    cv::Mat bgra(64, 64, CV_8UC4);
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x)
        bgra.at<cv::Vec4b>(y, x) = cv::Vec4b(static_cast<uint8_t>(x * 4), static_cast<uint8_t>(y * 4 + i * 50),
                                             static_cast<uint8_t>((x + y) * 2), static_cast<uint8_t>(alpha));
    cv::imwrite((dir / "img" / str_cat(i, ".png")).string(), bgra);
    core::write_file_atomic(dir / "img" / str_cat(i, ".txt"), "a photo");
  }
  const fs::path toml = dir / "data.toml";
  core::write_file_atomic(toml, str_cat("[general]\nresolution = 64\nmin_bucket_reso = 64\nbatch_size = 2\n[[datasets]]\n"
                                        "[[datasets.subsets]]\nimage_dir = \"img\"\n", extra_subset_keys));
  return toml.string();
}

TEST_F(TrainObjectiveTest, AlphaMaskWeighsTheLoss) {
  test::TempDir data;
  auto loss_with = [&](const std::string& toml) {
    return first_loss([&](train::TrainConfig& c) { c.dataset_config = toml; });
  };
  // Fully transparent: every element of the loss is masked out.
  EXPECT_EQ(loss_with(write_alpha_dataset(data / "clear", 0, "alpha_mask = true\n")), 0.0);
  // Fully opaque: the mask is 1 and the loss is the unmasked one, to the bit.
  const double opaque = loss_with(write_alpha_dataset(data / "opaque", 255, "alpha_mask = true\n"));
  const double unmasked = loss_with(write_alpha_dataset(data / "plain", 255, ""));
  EXPECT_GT(unmasked, 0);
  EXPECT_EQ(opaque, unmasked);
  // Half transparent: the loss halves (the mask is 128/255 everywhere).
  const double half = loss_with(write_alpha_dataset(data / "half", 128, "alpha_mask = true\n"));
  const double unmasked_half = loss_with(write_alpha_dataset(data / "plain_half", 128, ""));
  EXPECT_NEAR(half, unmasked_half * 128.0 / 255.0, 1e-6 * unmasked_half);
  // From the latent cache (latents from the posterior mean), the mask comes with the latents.
  auto cached_loss = [&](const std::string& toml) {
    return first_loss([&](train::TrainConfig& c) {
      c.dataset_config = toml;
      c.cache_latents = true;
    });
  };
  const double cached_half = cached_loss(write_alpha_dataset(data / "cached_half", 128, "alpha_mask = true\n"));
  const double cached_plain = cached_loss(write_alpha_dataset(data / "cached_plain", 128, ""));
  EXPECT_NE(cached_plain, unmasked_half);
  EXPECT_NEAR(cached_half, cached_plain * 128.0 / 255.0, 1e-6 * cached_plain);
}

TEST_F(TrainObjectiveTest, MaskImagesNeedMaskedLoss) {
  test::TempDir data;
  const std::string toml = write_alpha_dataset(data.path(), 255, "conditioning_data_dir = \"masks\"\n");
  fs::create_directories(data / "masks");
  for (int i = 0; i < 2; ++i) fs::copy_file(data / "img" / str_cat(i, ".png"), data / "masks" / str_cat(i, ".png"));
  test::TempDir out;
  train::TrainConfig c = base_config(out.path().string());
  c.dataset_config = toml;
  const std::string e = test::error_of([&] { train::run_training(c); });
  EXPECT_NE(e.find("needs masked_loss = true"), std::string::npos) << e;
  c.masked_loss = true;
  const train::TrainResult r = train::run_training(c);
  EXPECT_EQ(r.steps_done, 1);
}

}  // namespace
}  // namespace ls
