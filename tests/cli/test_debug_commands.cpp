// The debug commands end to end through the built executable: outputs equal the in-process
// computation, and every kind of bad input gives one `error:` line naming the file, exit code != 0.
#include <cmath>
#include <fstream>

#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/sdxl_conditioner.h"
#include "support/support.h"

namespace {

using ls::test::run_lorastudio;

// The executable uses every core, the test process may not: sums can be ordered differently.
::testing::AssertionResult same(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << a.sizes() << " vs " << b.sizes();
  double err = ls::test::norm_rel_error(a, b);
  if (err <= 1e-5) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max|a-b|/max|b| = " << err;
}

class DebugCommands : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ls::test::TempDir();
    config_ = std::string(ls::test::kSourceDir) + "/configs/sdxl_tiny.json";
    model_ = (*dir_ / "tiny.safetensors").string();
    auto r = run_lorastudio("debug make-model --config " + config_ + " --seed 3 --output " + model_);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::string path(const std::string& name) { return (*dir_ / name).string(); }

  // Runs make-inputs + forward for a component and returns (inputs, outputs).
  static std::pair<std::string, std::string> forward(const std::string& component, const std::string& extra = "") {
    auto in = path(component + "_in.safetensors"), out = path(component + "_out.safetensors");
    auto r = run_lorastudio("debug make-inputs --config " + config_ + " --component " + component +
                            " --batch 2 --height 64 --width 32 --seed 5 --output " + in + " " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    r = run_lorastudio("debug forward --model " + model_ + " --component " + component + " --inputs " + in +
                       " --output " + out);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return {in, out};
  }

  static void expect_error(const std::string& args, const std::string& needle) {
    auto r = run_lorastudio(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "not one line: " << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.out;
  }

  static inline ls::test::TempDir* dir_ = nullptr;
  static inline std::string config_, model_;
};

TEST_F(DebugCommands, UnetForwardEqualsInProcess) {
  auto [in, out] = forward("unet");
  ls::io::SafetensorsReader inputs(in), outputs(out);
  auto model = ls::models::load_sdxl_checkpoint(model_, "", {true, false, false}, torch::kCPU, torch::kFloat);
  torch::NoGradGuard no_grad;
  auto expected = model.unet->forward(inputs.load("x"), inputs.load("t"), inputs.load("context"), inputs.load("y"));
  EXPECT_EQ(outputs.load("out").sizes(), (std::vector<int64_t>{2, 4, 8, 4}));
  EXPECT_TRUE(same(outputs.load("out"), expected));
}

TEST_F(DebugCommands, TextForwardEqualsInProcess) {
  auto [in, out] = forward("text", std::string("--vocab ") + ls::test::kClipVocab + " --prompt 'a photo of a cat'");
  ls::io::SafetensorsReader inputs(in), outputs(out);
  auto ids = inputs.load("tokens_l");
  EXPECT_EQ(ids[0][0].item<int64_t>(), 49406);
  EXPECT_EQ(inputs.load("tokens_g")[0][76].item<int64_t>(), 0);
  auto model = ls::models::load_sdxl_checkpoint(model_, "", {false, true, false}, torch::kCPU, torch::kFloat);
  torch::NoGradGuard no_grad;
  ls::models::SdxlConditioner conditioner(model.te1, model.te2);
  auto e = conditioner.encode(inputs.load("tokens_l"), inputs.load("tokens_g"));
  EXPECT_TRUE(same(outputs.load("context"), e.context));
  EXPECT_TRUE(same(outputs.load("pooled_g"), e.pooled_g));
  EXPECT_TRUE(same(outputs.load("hidden_l"), e.hidden_l));
  EXPECT_TRUE(same(outputs.load("hidden_g"), e.hidden_g));
}

TEST_F(DebugCommands, VaeForwardEqualsInProcess) {
  auto [enc_in, enc_out] = forward("vae-encode");
  auto [dec_in, dec_out] = forward("vae-decode");
  auto model = ls::models::load_sdxl_checkpoint(model_, "", {false, false, true}, torch::kCPU, torch::kFloat);
  torch::NoGradGuard no_grad;
  ls::io::SafetensorsReader ei(enc_in), eo(enc_out), di(dec_in), d_out(dec_out);
  auto m = model.vae->encode(ei.load("image"));
  EXPECT_TRUE(same(eo.load("mean"), m.mean));
  EXPECT_TRUE(same(eo.load("logvar"), m.logvar));
  EXPECT_TRUE(same(d_out.load("image"), model.vae->decode(di.load("latent"))));
  EXPECT_EQ(d_out.load("image").size(2), 64);
}

// Writes raw bytes: 8-byte little-endian header length, the header, then the data.
std::string write_raw(const std::string& file, const std::string& header, size_t data_bytes) {
  std::ofstream out(file, std::ios::binary);
  uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << std::string(data_bytes, '\0');
  return file;
}

TEST_F(DebugCommands, BadInputsGiveOneLineErrors) {
  auto inputs = forward("unet").first;
  std::string common = " --component unet --inputs " + inputs + " --output " + path("never.safetensors");
  // Truncated checkpoint.
  auto truncated = path("truncated.safetensors");
  std::filesystem::copy_file(model_, truncated);
  std::filesystem::resize_file(truncated, std::filesystem::file_size(model_) / 2);
  expect_error("debug forward --model " + truncated + common, truncated);
  // Header pointing outside the file.
  auto outside = write_raw(path("outside.safetensors"),
                           R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8);
  expect_error("debug forward --model " + outside + common, outside);
  // Unknown dtype.
  auto f7 = write_raw(path("f7.safetensors"), R"({"a":{"dtype":"F7","shape":[4],"data_offsets":[0,4]}})", 4);
  expect_error("debug forward --model " + f7 + common, "F7");
  // Wrong checkpoint type: an SD 1.x-shaped file, and a LoRA.
  auto sd1 = path("sd1.safetensors");
  ls::io::save_safetensors(sd1, {{"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                                  torch::zeros({320, 768})}});
  expect_error("debug forward --model " + sd1 + common, "SD 1.x");
  auto lora = path("lora.safetensors");
  ls::io::save_safetensors(lora, {{"lora_unet_input_blocks_4_1_proj_in.alpha", torch::ones({})}});
  expect_error("debug forward --model " + lora + common, "LoRA");
  // Missing key and wrong shape.
  ls::io::SafetensorsReader reader(model_);
  std::vector<std::pair<std::string, torch::Tensor>> all, reshaped;
  std::string dropped = "model.diffusion_model.out.2.bias";
  for (auto& info : reader.tensors()) {
    auto t = reader.load(info.name);
    if (info.name != dropped) all.emplace_back(info.name, t);
    reshaped.emplace_back(info.name, info.name == dropped ? torch::zeros({5}) : t);
  }
  ls::io::save_safetensors(path("missing.safetensors"), all, reader.metadata());
  expect_error("debug forward --model " + path("missing.safetensors") + common, "missing: " + dropped);
  ls::io::save_safetensors(path("shape.safetensors"), reshaped, reader.metadata());
  expect_error("debug forward --model " + path("shape.safetensors") + common, dropped + " [5]");
  // Missing input tensor, unknown component, unknown dtype flag.
  auto empty_inputs = path("empty_in.safetensors");
  ls::io::save_safetensors(empty_inputs, {{"x", torch::zeros({1})}});
  expect_error("debug forward --model " + model_ + " --component unet --inputs " + empty_inputs + " --output " +
                   path("o.safetensors"),
               "input 't' is missing");
  expect_error("debug forward --model " + model_ + " --component clip" + " --inputs " + inputs + " --output " +
                   path("o.safetensors"),
               "--component 'clip'");
  expect_error("debug forward --model " + model_ + common + " --dtype fp8", "fp8");
  EXPECT_FALSE(std::filesystem::exists(path("never.safetensors")));
}

TEST_F(DebugCommands, Fp16AndBf16RunClose) {
  auto [in, out] = forward("unet");
  auto half_out = path("bf16_out.safetensors");
  auto r = run_lorastudio("debug forward --model " + model_ + " --component unet --inputs " + in + " --output " +
                          half_out + " --dtype bf16");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ls::io::SafetensorsReader a(out), b(half_out);
  EXPECT_LT(ls::test::norm_rel_error(b.load("out"), a.load("out")), 0.05);
}

// make-lora + make-inputs --component train-step feed train-step: with random lora_up every gradient
// is non-zero (kohya's zero init leaves lora_down's at exactly 0); the same seed writes the same file.
TEST_F(DebugCommands, MakeLoraAndInputsFeedTrainStep) {
  const auto lora = path("made_lora.safetensors"), again = path("made_lora2.safetensors");
  const auto in = path("step_in.safetensors"), out = path("step_out.safetensors");
  for (const auto& file : {lora, again}) {
    auto r = run_lorastudio("debug make-lora --model " + model_ + " --network_dim 4 --network_alpha 2 --up-std 0.01 "
                            "--seed 2 --output " + file);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  ls::io::SafetensorsReader a(lora), b(again);
  EXPECT_EQ(a.data_bytes(), b.data_bytes());
  int ups = 0, unet_modules = 0, te_modules = 0;
  for (const auto& t : a.tensors()) {
    if (t.name.find(".alpha") != std::string::npos) {
      EXPECT_EQ(a.load(t.name).item<double>(), 2.0) << t.name;
      (t.name.rfind("lora_unet_", 0) == 0 ? unet_modules : te_modules) += 1;
    }
    if (t.name.find("lora_up") != std::string::npos) {
      EXPECT_GT(a.load(t.name).abs().max().item<double>(), 0) << t.name;
      ++ups;
    }
  }
  EXPECT_GT(unet_modules, 0);
  EXPECT_GT(te_modules, 0);  // the tiny checkpoint has both text encoders
  EXPECT_EQ(ups, unet_modules + te_modules);

  auto r = run_lorastudio("debug make-inputs --config " + config_ + " --component train-step --batch 2 --height 64 "
                          "--width 32 --seed 1 --output " + in);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ls::io::SafetensorsReader inputs(in);
  EXPECT_EQ(inputs.load("latents").sizes(), inputs.load("noise").sizes());
  EXPECT_EQ(inputs.load("timesteps").scalar_type(), torch::kLong);
  r = run_lorastudio("debug train-step --model " + model_ + " --lora-init " + lora + " --inputs " + in + " --output " +
                     out + " --max_grad_norm 0");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ls::io::SafetensorsReader step(out);
  EXPECT_TRUE(std::isfinite(step.load("loss").item<double>()));
  int grads = 0;
  for (const auto& t : step.tensors()) {
    if (t.name.rfind("grad.", 0) != 0) continue;
    const auto g = step.load(t.name);
    EXPECT_TRUE(g.isfinite().all().item<bool>()) << t.name;
    if (t.name.find(".alpha") == std::string::npos) {
      EXPECT_GT(g.abs().max().item<double>(), 0) << t.name;
    }
    ++grads;
  }
  EXPECT_EQ(grads, 2 * unet_modules);  // down and up of every UNet module; the text encoders' are not trained
  expect_error("debug make-lora --model " + lora + " --output " + path("never.safetensors"),
               "this is a LoRA, not a base model");
}

}  // namespace
