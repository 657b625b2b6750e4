// The device-agnostic code on CUDA: the same computations as the CPU tests, run on the GPU and
// compared with the CPU (float32, TF32 off) or with themselves (resume). Every test skips with one
// line where no CUDA device is present; ctest label `cuda` (scripts/gpu-check runs it).
// Bounds: float32 with other kernels and reduction orders: u = 6e-8 times the tiny models' depth
// and reduction lengths (a few hundred) gives ~1e-5 relative per forward; samplers chain 8 such
// calls, so 1e-4 there.
#include <gtest/gtest.h>

#include <ATen/Context.h>
#include <torch/cuda.h>

#include "caption/tagger_model.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "lora/network.h"
#include "models/checkpoint.h"
#include "models/sdxl_model.h"
#include "sample/cfg_denoiser.h"
#include "sample/samplers.h"
#include "support/support.h"
#include "support/training_data.h"
#include "train/train_log.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace ls {
namespace {

#define LS_REQUIRE_CUDA()                                                     \
  do {                                                                        \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device here";  \
    at::globalContext().setAllowTF32CuBLAS(false);                            \
    at::globalContext().setAllowTF32CuDNN(false);                             \
  } while (0)

const torch::Device kCuda("cuda:0");

models::SdxlModel tiny_model(uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  return models::SdxlModel::create(models::SdxlConfig::tiny(), models::Components::all());
}

TEST(CudaModels, UnetTextAndVaeMatchTheCpu) {
  LS_REQUIRE_CUDA();
  models::SdxlModel m = tiny_model(1);
  const auto& c = m.config.unet;
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 4, 16, 16}), ctx = torch::randn({2, 77, c.context_dim});
  const auto y = torch::randn({2, c.adm_in_channels}), t = torch::tensor({10, 900}, torch::kLong);
  const auto cpu_unet = m.unet->forward(x, t, ctx, y);
  const auto ids = torch::randint(0, 49408, {2, 77}, torch::kLong);
  const auto cpu_text = m.te2->forward(ids).last;
  const auto image = torch::rand({1, 3, 64, 64}) * 2 - 1;
  const auto cpu_mean = m.vae->encode(image).mean;
  m.unet->to(kCuda), m.te2->to(kCuda), m.vae->to(kCuda);
  EXPECT_LE(test::norm_rel_error(m.unet->forward(x.to(kCuda), t.to(kCuda), ctx.to(kCuda), y.to(kCuda)), cpu_unet), 1e-5);
  EXPECT_LE(test::norm_rel_error(m.te2->forward(ids.to(kCuda)).last, cpu_text), 1e-5);
  EXPECT_LE(test::norm_rel_error(m.vae->encode(image.to(kCuda)).mean, cpu_mean), 1e-5);
}

// The five tagger networks on the GPU against timm's logits (float32, TF32 off: the CPU bound
// 1e-4 of the largest logit holds with room), and in bf16 / fp16 within what 8 / 11 mantissa bits
// allow through a few blocks (~2e-2 / 3e-3 relative per block, so 0.1 and 0.02 of the largest logit).
TEST(CudaTagger, FiveArchitecturesMatchTimm) {
  LS_REQUIRE_CUDA();
  for (const char* name : {"vit", "vit_large", "swinv2", "convnext", "eva02"}) {
    const fs::path dir = fs::path(test::kSourceDir) / "tests/fixtures/tagger" / name;
    io::SafetensorsReader golden(dir / "golden.safetensors");
    const auto pixels = golden.load("pixel_values").to(kCuda), expected = golden.load("logits");
    const double scale = expected.abs().max().item<double>();
    torch::InferenceMode inference;
    for (auto [dtype, bound] : {std::pair{torch::kFloat, 1e-4}, std::pair{torch::kBFloat16, 0.1}, std::pair{torch::kHalf, 0.02}}) {
      auto model = caption::load_tagger_model(dir, kCuda, dtype);
      auto logits = model.net->forward(pixels.to(dtype)).to(torch::kCPU, torch::kFloat);
      EXPECT_LE((logits - expected).abs().max().item<double>(), bound * scale) << name << " " << c10::toString(dtype);
    }
  }
}

TEST(CudaLora, AppliedAndMergedMatchTheCpu) {
  LS_REQUIRE_CUDA();
  models::SdxlModel m = tiny_model(2);
  lora::LoraNetworkOptions o;
  o.rank = 4;
  o.conv_rank = 2;
  lora::LoraNetwork net(m, o);
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.normal_(0, 0.05);  // a trained-looking LoRA (up is zero at init)
  net->set_multiplier(0.7);
  net->apply();
  const auto& c = m.config.unet;
  const auto x = torch::randn({1, 4, 16, 16}), ctx = torch::randn({1, 77, c.context_dim});
  const auto y = torch::randn({1, c.adm_in_channels}), t = torch::tensor({500}, torch::kLong);
  const auto cpu = m.unet->forward(x, t, ctx, y);
  m.unet->to(kCuda);
  net->to(kCuda);
  const auto xs = x.to(kCuda), cs = ctx.to(kCuda), ys = y.to(kCuda), ts = t.to(kCuda);
  EXPECT_LE(test::norm_rel_error(m.unet->forward(xs, ts, cs, ys), cpu), 1e-5);
  net->merge_into_base();
  net->remove();
  EXPECT_LE(test::norm_rel_error(m.unet->forward(xs, ts, cs, ys), cpu), 1e-5);
}

TEST(CudaSamplers, EulerAndDpmppMatchTheCpu) {
  LS_REQUIRE_CUDA();
  models::SdxlModel m = tiny_model(3);
  torch::NoGradGuard no_grad;
  const auto& c = m.config.unet;
  const auto schedule = models::NoiseSchedule::sdxl();
  const sample::UnetConditioning cond{torch::randn({1, 77, c.context_dim}), torch::randn({1, c.adm_in_channels})};
  const sample::UnetConditioning uncond{torch::randn({1, 77, c.context_dim}), torch::randn({1, c.adm_in_channels})};
  const auto x = torch::randn({1, 4, 16, 16});
  for (const char* name : {"Euler", "DPM++ 2M"}) {
    const auto spec = sample::parse_sampler(name);
    const auto sigmas = sample::sampler_sigmas(spec, schedule, 8);
    m.unet->to(torch::kCPU);
    const auto cpu = sample::run_sampler(spec, sample::cfg_denoiser(m.unet, schedule, cond, uncond, 5.0), x * sigmas[0],
                                         sigmas, {}, {});
    m.unet->to(kCuda);
    const sample::UnetConditioning cond_d{cond.context.to(kCuda), cond.y.to(kCuda)};
    const sample::UnetConditioning uncond_d{uncond.context.to(kCuda), uncond.y.to(kCuda)};
    const auto gpu = sample::run_sampler(spec, sample::cfg_denoiser(m.unet, schedule, cond_d, uncond_d, 5.0),
                                         x.to(kCuda) * sigmas[0].item<double>(), sigmas, {}, {});
    EXPECT_LE(test::norm_rel_error(gpu, cpu), 1e-4) << name;
  }
}

class CudaTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    LS_REQUIRE_CUDA();
    models::SdxlModel model = tiny_model(4);
    models::save_sdxl_checkpoint((dir_ / "tiny.safetensors").string(), model, std::nullopt);
    toml_ = test::write_training_dataset(dir_ / "data", 0);
  }
  train::TrainConfig config(const fs::path& out, const std::string& precision) const {
    train::TrainConfig c;
    c.pretrained_model_name_or_path = (dir_ / "tiny.safetensors").string();
    c.dataset_config = toml_;
    c.tokenizer = test::kClipVocab;
    c.output_dir = out.string();
    c.output_name = "tiny";
    c.network_dim = 8;
    c.network_alpha = 4;
    c.learning_rate = 5e-3;
    c.seed = 11;
    c.device = "cuda";
    c.mixed_precision = precision;
    c.max_train_epochs = 4;
    c.cache_latents = true;  // cached latents travel through pinned memory
    return c;
  }
  test::TempDir dir_;
  std::string toml_;
};

// kohya's running epoch loss falls well below the first epoch's (the quickstart's 1.14 -> 0.30 on
// CPU); bf16 mixed precision (base bf16, LoRA float32) and fp16 with loss scaling alike.
TEST_F(CudaTraining, TinyTrainingLowersTheLoss) {
  for (const char* precision : {"no", "bf16", "fp16"}) {
    test::TempDir out;
    const train::TrainResult r = train::run_training(config(out.path(), precision));
    const auto log = train::read_step_records(r.log_path);
    ASSERT_FALSE(log.empty());
    double first = 0, last = 0;
    for (const auto& s : log) (s.epoch == 1 ? first : last) = s.loss_avg;
    EXPECT_LT(last, 0.8 * first) << precision << ": epoch-1 loss " << first << ", last " << last;
  }
}

// An interrupted and resumed run on CUDA: the draws are the same (generators seeded by position);
// kernels may accumulate in another order between processes (atomics in backward), so the LoRAs
// agree to float32 rounding over 8 optimizer steps rather than bit for bit.
TEST_F(CudaTraining, ResumedEqualsUninterrupted) {
  test::TempDir full, parts;
  train::TrainConfig c = config(full.path(), "bf16");
  c.max_train_epochs.reset();
  c.max_train_steps = 8;
  const train::TrainResult a = train::run_training(c);
  train::TrainHooks stop;
  stop.stop_after_step = [](int64_t step) { return step == 3; };
  c.output_dir = parts.path().string();
  const train::TrainResult b = train::run_training(c, stop);
  ASSERT_TRUE(b.interrupted);
  c.resume = b.last_state;
  const train::TrainResult r = train::run_training(c);
  io::SafetensorsReader fa(a.final_lora), fr(r.final_lora);
  for (const auto& info : fa.tensors())
    EXPECT_LE(test::norm_rel_error(fr.load(info.name), fa.load(info.name)), 1e-4) << info.name;
}

}  // namespace
}  // namespace ls
