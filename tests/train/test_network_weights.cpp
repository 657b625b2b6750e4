// Continuing training from a LoRA (kohya's network_weights / dim_from_weights) on the tiny model:
// the first step's loss is the loss the LoRA gives, the network starts with the file's tensors,
// dim_from_weights takes every module's rank and alpha from the file, a rank that differs is one
// error line, and what the file and the network do not share is one line per part.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/strings.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "models/checkpoint.h"
#include "models/noise_schedule.h"
#include "support/support.h"
#include "support/tiny_training.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace ls {
namespace {

class NetworkWeightsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);  // ctest runs two binaries at once on two cores
    tiny_ = new test::TinyTraining();
    // The LoRA the tests continue from: both parts and the convs, trained 3 steps so lora_up is
    // far from its zero start.
    train::TrainConfig c = config((tiny_->dir / "start").string());
    c.conv_dim = 2;
    c.conv_alpha = 1;
    c.max_train_steps = 3;
    c.output_name = "start";
    start_ = new std::string(train::run_training(c).final_lora);
  }
  static void TearDownTestSuite() {
    delete start_;
    delete tiny_;
  }

  static train::TrainConfig config(const std::string& out) { return tiny_->config(out); }

  static std::map<std::string, torch::Tensor> file_tensors(const std::string& path) {
    io::SafetensorsReader r(path);
    std::map<std::string, torch::Tensor> out;
    for (const auto& info : r.tensors()) out[info.name] = r.load(info.name);
    return out;
  }

  // A run's notes (the print hook's "note: " lines).
  static std::vector<std::string> notes_of(const std::vector<std::string>& lines) {
    std::vector<std::string> out;
    for (const std::string& l : lines)
      if (l.rfind("note: ", 0) == 0) out.push_back(l.substr(6));
    return out;
  }

  static bool has_line(const std::vector<std::string>& lines, const std::string& part) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }

  static test::TinyTraining* tiny_;
  static std::string* start_;
};
test::TinyTraining* NetworkWeightsTest::tiny_ = nullptr;
std::string* NetworkWeightsTest::start_ = nullptr;

// The first step, before any update, computes the loss of the base model with the file's LoRA:
// the trainer's loss equals a plain forward of the UNet with load_lora's network applied on the
// same draws. Same process, one thread, the same float32 kernels; the bound allows float32
// rounding over the UNet's reductions and the loss mean (u = 6e-8 times a few hundred terms).
TEST_F(NetworkWeightsTest, StepZeroLossIsTheLossTheLoraGives) {
  test::TempDir out;
  train::TrainConfig c = config(out.path().string());
  c.network_train_unet_only = true;  // the step's context is then the frozen encoders' output
  c.conv_dim = 2;
  c.conv_alpha = 1;
  c.network_weights = *start_;
  double trainer_loss = 0;
  train::StepInputs inputs;
  std::map<std::string, torch::Tensor> at_start;
  std::vector<std::string> lines;
  train::TrainHooks hooks;
  hooks.print = [&](const std::string& l) { lines.push_back(l); };
  hooks.after_backward = [&](const train::StepInputs& in, double loss, lora::LoraNetworkImpl& network) {
    trainer_loss = loss;
    inputs.latents = in.latents.clone();
    inputs.noise = in.noise.clone();
    inputs.timesteps = in.timesteps.clone();
    inputs.context = in.context.clone();
    inputs.y = in.y.clone();
    for (const auto& [k, t] : lora::lora_state(network)) at_start[k] = t.clone();
  };
  train::run_training(c, hooks);
  ASSERT_FALSE(at_start.empty());

  // The network held exactly the file's U-Net tensors (float32 in both).
  const auto file = file_tensors(*start_);
  size_t unet_keys = 0;
  for (const auto& [k, t] : file) {
    if (k.rfind("lora_unet_", 0) != 0) continue;
    ++unet_keys;
    ASSERT_TRUE(at_start.count(k)) << k;
    EXPECT_TRUE(test::bit_equal(at_start.at(k), t)) << k;
  }
  EXPECT_EQ(at_start.size(), unet_keys);

  models::SdxlModel model = models::load_sdxl_checkpoint(tiny_->checkpoint, "",
                                                         {true, false, false}, torch::kCPU, torch::kFloat);
  torch::NoGradGuard no_grad;
  const models::NoiseSchedule schedule = models::NoiseSchedule::sdxl();
  auto loss_now = [&] {
    const torch::Tensor noisy = schedule.add_noise(inputs.latents, inputs.noise, inputs.timesteps);
    const torch::Tensor pred = model.unet->forward(noisy, inputs.timesteps, inputs.context, inputs.y);
    return (pred.to(torch::kFloat) - inputs.noise).pow(2).mean().item<double>();
  };
  const double base_loss = loss_now();
  lora::LoadedLora loaded = lora::load_lora(*start_, model);
  loaded.network->apply();
  const double lora_loss = loss_now();
  EXPECT_NEAR(trainer_loss, lora_loss, 1e-5 * std::abs(lora_loss));
  RecordProperty("loss_rel_error", str_cat(std::abs(trainer_loss - lora_loss) / std::abs(lora_loss), " (loss ", lora_loss,
                                          ", without the LoRA ", base_loss, ")"));
  // The file's LoRA is visible in the loss, far beyond that bound.
  EXPECT_GT(std::abs(lora_loss - base_loss), 1e-3 * std::abs(lora_loss));

  const auto notes = notes_of(lines);
  EXPECT_TRUE(has_line(notes, str_cat("network_weights: ", unet_keys / 3, " of the network's ", unet_keys / 3,
                                      " modules start from ", *start_)));
  EXPECT_TRUE(has_line(notes, "lora_te1 modules left out: the text encoders are not trained (network_train_unet_only)"));
  EXPECT_TRUE(has_line(notes, "lora_te2 modules left out"));
}

// dim_from_weights: the modules, ranks and alphas are the file's (each module its own), whatever
// network_dim says; the run trains them and saves them in the same shapes. kohya writes the
// config's network_dim / network_alpha into the metadata, and no "dropout" into ss_network_args.
TEST_F(NetworkWeightsTest, DimFromWeightsTakesEachModulesRankAndAlpha) {
  test::TempDir out;
  // A file with mixed ranks and alphas: from the start LoRA, every second module cut to rank 2
  // and given alpha 0.5.
  std::vector<std::pair<std::string, torch::Tensor>> mixed;
  std::map<std::string, int> module_index;
  for (const auto& [k, t] : file_tensors(*start_)) {
    const std::string module = k.substr(0, k.find('.'));
    module_index.emplace(module, static_cast<int>(module_index.size()));
    const bool cut = module_index.at(module) % 2 == 1;
    torch::Tensor v = t;
    if (cut && k.find(".lora_down.") != std::string::npos) v = t.narrow(0, 0, 2).contiguous();
    if (cut && k.find(".lora_up.") != std::string::npos) v = t.narrow(1, 0, 2).contiguous();
    if (cut && k.find(".alpha") != std::string::npos) v = torch::tensor(0.5f);
    mixed.emplace_back(k, v);
  }
  const std::string mixed_path = (out / "mixed.safetensors").string();
  io::save_safetensors(mixed_path, mixed, {});

  train::TrainConfig c = config((out / "run").string());
  c.network_dim = 8;  // not the file's: dim_from_weights wins
  c.network_alpha = 1;
  c.network_dropout = 0.1;
  c.network_args = {"rank_dropout=0.1", "loraplus_lr_ratio=4"};
  c.network_weights = mixed_path;
  c.dim_from_weights = true;
  std::map<std::string, torch::Tensor> at_start;
  std::vector<std::string> lines;
  train::TrainHooks hooks;
  hooks.print = [&](const std::string& l) { lines.push_back(l); };
  hooks.after_backward = [&](const train::StepInputs&, double, lora::LoraNetworkImpl& network) {
    for (const auto& [k, t] : lora::lora_state(network)) at_start[k] = t.clone();
  };
  const train::TrainResult r = train::run_training(c, hooks);
  const auto want = file_tensors(mixed_path);
  ASSERT_EQ(at_start.size(), want.size());
  for (const auto& [k, t] : want) EXPECT_TRUE(test::bit_equal(at_start.at(k), t)) << k;
  io::SafetensorsReader saved(r.final_lora);
  ASSERT_EQ(saved.tensors().size(), want.size());
  for (const auto& [k, t] : want) {
    const io::TensorInfo* info = saved.find(k);
    ASSERT_NE(info, nullptr) << k;
    EXPECT_EQ(info->shape, t.sizes().vec()) << k;
    if (k.find(".alpha") != std::string::npos) EXPECT_EQ(saved.load(k).item<float>(), t.item<float>()) << k;
  }
  EXPECT_EQ(saved.metadata().at("ss_network_dim"), "8");
  EXPECT_EQ(saved.metadata().at("ss_network_alpha"), "1.0");
  EXPECT_EQ(saved.metadata().at("ss_network_dropout"), "0.1");  // args.network_dropout, though unused
  EXPECT_EQ(saved.metadata().at("ss_network_args"), R"({"rank_dropout": "0.1", "loraplus_lr_ratio": "4"})");
  const auto notes = notes_of(lines);
  EXPECT_TRUE(has_line(notes, str_cat("dim_from_weights: ", module_index.size(), " modules")));
  EXPECT_TRUE(has_line(notes, "dim_from_weights: network_dropout, rank_dropout, loraplus_lr_ratio ignored"));
}

// Without dim_from_weights the file goes into a network of network_dim: another rank is one
// error line naming the file, the first module that differs and the way out.
TEST_F(NetworkWeightsTest, AnotherRankIsOneErrorLine) {
  test::TempDir out;
  train::TrainConfig c = config(out.path().string());
  c.network_dim = 8;
  c.conv_dim = 2;
  c.network_weights = *start_;
  const std::string e = test::error_of([&] { train::run_training(c); });
  EXPECT_EQ(e.rfind(*start_ + ": lora_", 0), 0u) << e;
  EXPECT_NE(e.find(".lora_down.weight has shape [4, "), std::string::npos) << e;
  EXPECT_NE(e.find("but the network being trained has [8, "), std::string::npos) << e;
  EXPECT_NE(e.find("dim_from_weights = true"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;

  c.network_weights = tiny_->checkpoint;
  c.network_dim = 4;
  EXPECT_NE(test::error_of([&] { train::run_training(c); }).find("network_weights must be a LoRA file"), std::string::npos);
  c.network_weights.clear();
  c.dim_from_weights = true;
  EXPECT_NE(test::error_of([&] { train::run_training(c); }).find("dim_from_weights needs network_weights"),
            std::string::npos);
}

// kohya's load_weights is load_state_dict(strict=False): the file's modules the network lacks are
// left out, the network's modules the file lacks keep their fresh start; one line per part says so.
TEST_F(NetworkWeightsTest, WhatTheFileAndNetworkDoNotShareIsOneLinePerPart) {
  test::TempDir out;
  std::vector<std::pair<std::string, torch::Tensor>> unet_only;
  size_t conv_modules = 0;
  for (const auto& [k, t] : file_tensors(*start_)) {
    if (k.rfind("lora_unet_", 0) != 0) continue;
    unet_only.emplace_back(k, t);
    conv_modules += k.find(".lora_down.") != std::string::npos && t.dim() == 4 && t.size(2) == 3;
  }
  ASSERT_GT(conv_modules, 0u);
  const std::string path = (out / "unet.safetensors").string();
  io::save_safetensors(path, unet_only, {});
  train::TrainConfig c = config((out / "run").string());
  c.network_weights = path;  // no conv_dim: the file's conv modules have no place
  std::vector<std::string> lines;
  train::TrainHooks hooks;
  hooks.print = [&](const std::string& l) { lines.push_back(l); };
  train::run_training(c, hooks);
  std::vector<std::string> about;
  for (const std::string& n : notes_of(lines))
    if (n.rfind("network_weights: " + path + ": ", 0) == 0) about.push_back(n);
  ASSERT_EQ(about.size(), 3u) << (lines.empty() ? "" : lines[0]);
  // The ResBlocks' and samplers' modules (3x3 convs and the Linear / 1x1 ones beside them).
  EXPECT_TRUE(has_line(about, " lora_unet modules are not in the network being trained and left out (first: "));
  EXPECT_TRUE(has_line(about, " lora_te1 modules of the network are not in the file and start from a fresh initialisation"));
  EXPECT_TRUE(has_line(about, " lora_te2 modules of the network are not in the file"));
}

}  // namespace
}  // namespace ls
