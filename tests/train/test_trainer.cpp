// End-to-end training on the tiny SDXL-shaped model and the synthetic dataset: the loss of a fixed
// evaluation set falls, the LoRA changes the output, the base stays bit-identical; an interrupted
// run resumed from its state ends with the same LoRA file, byte for byte; a NaN stops the run.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "lora/kohya_format.h"
#include "lora/network.h"
#include "models/checkpoint.h"
#include "models/sdxl_conditioner.h"
#include "support/support.h"
#include "support/training_data.h"
#include "train/loss.h"
#include "models/noise_schedule.h"
#include "train/text_inputs.h"
#include "train/train_log.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace ls {
namespace {

class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);  // ctest runs two binaries at once on two cores
    dir_ = new test::TempDir();
    test::write_tiny_checkpoint(*dir_ / "tiny.safetensors");
    toml_ = test::write_training_dataset(*dir_ / "data", 2);
  }
  static void TearDownTestSuite() { delete dir_; }

  static train::TrainConfig base_config(const std::string& out) {
    train::TrainConfig c;
    c.pretrained_model_name_or_path = (*dir_ / "tiny.safetensors").string();
    c.dataset_config = toml_;
    c.tokenizer = test::kClipVocab;
    c.output_dir = out;
    c.output_name = "tiny";
    c.network_dim = 4;
    c.network_alpha = 2;
    c.learning_rate = 1e-3;
    c.seed = 11;
    return c;
  }

  // `lorastudio train` on the tiny model as a separate process: 8 steps, a LoRA and a state every
  // 4 steps (the kill -9 and SIGINT tests), then `extra`.
  static std::vector<std::string> train_argv(const fs::path& out, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{test::kLorastudioExe, "train", "--pretrained_model_name_or_path",
                                  (*dir_ / "tiny.safetensors").string(), "--dataset_config", toml_,
                                  "--tokenizer", test::kClipVocab, "--output_dir", out.string(),
                                  "--output_name", "tiny", "--network_dim", "4", "--learning_rate", "1e-3",
                                  "--seed", "7", "--max_train_steps", "8", "--save_every_n_steps", "4",
                                  "--save_state"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  static test::TempDir* dir_;
  static std::string toml_;
};
test::TempDir* TrainerTest::dir_ = nullptr;
std::string TrainerTest::toml_;

std::string file_bytes(const std::string& path) { return core::read_file(path); }

// Mean loss over the first batches of epoch 0 at five fixed timesteps, with fixed noise.
double evaluation_loss(models::SdxlModel& model, const std::string& toml) {
  torch::NoGradGuard no_grad;
  data::Findings findings;
  const data::DataConfig config = data::load_dataset_toml(toml);
  const auto datasets = data::index_datasets(config, findings);
  const auto plan = data::epoch_plan(datasets, 0, 0);
  const data::BatchLoader loader(datasets, 0);
  const auto tokenizer = text::ClipTokenizer::from_file(test::kClipVocab);
  const auto schedule = models::NoiseSchedule::sdxl();
  models::SdxlConditioner cond(model.te1, model.te2);
  torch::Generator gen = at::detail::createCPUGenerator(1234);
  double sum = 0;
  int n = 0;
  for (size_t bi = 0; bi < 3 && bi < plan.size(); ++bi) {
    const data::Batch batch = loader.load(plan[bi], 0, static_cast<int64_t>(bi));
    const auto moments = model.vae->encode(batch.pixels);
    const torch::Tensor latents = moments.mean * 0.13025;
    const auto ids = train::tokenize_captions(tokenizer, batch.captions, 1, torch::kCPU);
    const auto emb = cond.encode(ids.ids_l, ids.ids_g);
    const auto sizes = train::size_tensors(batch.sizes, torch::kCPU);
    const torch::Tensor y = models::size_embedding(emb.pooled_g, sizes.original_hw, sizes.crop_tl, sizes.target_hw);
    for (int64_t tv : {100, 300, 500, 700, 900}) {
      const torch::Tensor t = torch::full({latents.size(0)}, tv, torch::kLong);
      const torch::Tensor noise = torch::randn(latents.sizes(), gen);
      const torch::Tensor pred = model.unet->forward(schedule.add_noise(latents, noise, t), t, emb.context, y);
      sum += train::diffusion_loss(pred, noise, torch::ones({latents.size(0)}), t, schedule, train::LossOptions{}).loss.item<double>();
      ++n;
    }
  }
  return sum / n;
}

TEST_F(TrainerTest, LowersLossChangesOutputKeepsBaseBitIdentical) {
  test::TempDir out;
  train::TrainConfig c = base_config(out.path().string());
  c.max_train_steps = 30;
  c.learning_rate = 5e-3;
  c.conv_dim = 4;  // LoCon: the ResBlocks too
  double before = 0, after = 0, output_change = 0;
  int base_tensors = 0;
  train::TrainHooks hooks;
  hooks.after_training = [&](models::SdxlModel& model, lora::LoraNetworkImpl& net) {
    after = evaluation_loss(model, toml_);
    torch::NoGradGuard ng;
    const torch::Tensor x = torch::randn({1, 4, 8, 8}), ctx = torch::randn({1, 77, 64}), y = torch::randn({1, 1568});
    const torch::Tensor t = torch::tensor({500}, torch::kLong);
    const torch::Tensor with = model.unet->forward(x, t, ctx, y);
    net.remove();
    output_change = (with - model.unet->forward(x, t, ctx, y)).abs().max().item<double>();
    before = evaluation_loss(model, toml_);
    // The frozen base is untouched by training: every tensor equals the file's.
    auto fresh = models::load_sdxl_checkpoint(c.pretrained_model_name_or_path, "", models::Components::all(),
                                              torch::kCPU, torch::kFloat);
    const auto a = models::checkpoint_tensors(model), b = models::checkpoint_tensors(fresh);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].first, b[i].first);
      EXPECT_TRUE(test::bit_equal(a[i].second, b[i].second)) << a[i].first;
      ++base_tensors;
    }
  };
  const train::TrainResult r = train::run_training(c, hooks);
  EXPECT_EQ(r.steps_done, 30);
  EXPECT_TRUE(fs::exists(r.final_lora));
  EXPECT_TRUE(fs::exists(r.loss_curve));
  EXPECT_TRUE(fs::exists(out / "tiny-train.toml"));
  EXPECT_EQ(train::read_step_records(r.log_path).size(), 30u);
  std::printf("[train] evaluation loss before %.5f after %.5f (%.1f%% lower), output change %.3g, %d base tensors equal\n",
              before, after, 100 * (before - after) / before, output_change, base_tensors);
  EXPECT_LT(after, before * 0.95);  // measurably lower
  EXPECT_GT(output_change, 1e-3);
  EXPECT_GT(base_tensors, 100);
}

using ConfigFor = std::function<train::TrainConfig(const std::string& out)>;

// Trains `config` 8 steps straight, and again stopped after step 3 and resumed from that state: the
// LoRA files are byte-identical and the logs read as one run. `then` gets the resume config while
// its state still exists.
void expect_interrupted_resume_identical(const ConfigFor& config,
                                         const std::function<void(const train::TrainConfig&)>& then = nullptr) {
  test::TempDir full, parts;
  const train::TrainResult a = train::run_training(config(full.path().string()));
  ASSERT_FALSE(a.interrupted);
  train::TrainHooks stop;
  stop.stop_after_step = [](int64_t step) { return step == 3; };
  const train::TrainResult b = train::run_training(config(parts.path().string()), stop);
  ASSERT_TRUE(b.interrupted);
  EXPECT_EQ(b.steps_done, 3);
  EXPECT_FALSE(fs::exists(parts / "tiny.safetensors"));
  train::TrainConfig resume = config(parts.path().string());
  resume.resume = b.last_state;
  const train::TrainResult c = train::run_training(resume);
  EXPECT_EQ(c.steps_done, 8);
  EXPECT_TRUE(file_bytes(a.final_lora) == file_bytes(c.final_lora)) << "LoRA files differ";
  // The log reads as one run: 8 steps, the same losses.
  const auto la = train::read_step_records(a.log_path), lc = train::read_step_records(c.log_path);
  ASSERT_EQ(la.size(), 8u);
  ASSERT_EQ(lc.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(la[i].loss, lc[i].loss) << i;
  if (then) then(resume);
}

TEST_F(TrainerTest, InterruptedThenResumedEqualsUninterrupted) {
  // Adafactor with its own state, warmup + cosine, accumulation 2, checkpointing, reg images.
  auto config = [&](const std::string& out) {
    train::TrainConfig c = base_config(out);
    c.optimizer_type = "Adafactor";
    c.optimizer_args = {"scale_parameter=False relative_step=False warmup_init=False"};
    c.lr_scheduler = "cosine";
    c.lr_warmup_steps = 2;
    c.gradient_accumulation_steps = 2;
    c.gradient_checkpointing = true;
    c.max_train_steps = 8;
    c.noise_offset = 0.05;
    c.min_snr_gamma = 5;
    return c;
  };
  expect_interrupted_resume_identical(config, [](const train::TrainConfig& resume) {
    // Changing a setting that alters the math is refused by name.
    train::TrainConfig changed = resume;
    changed.learning_rate = 5e-4;
    try {
      train::run_training(changed);
      ADD_FAILURE() << "resume with another learning_rate accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("learning_rate"), std::string::npos) << e.what();
    }
  });
}

// Prodigy's d estimate, its history and moments resume exactly: both parts trained at learning_rate
// 1 under a warmup whose first step Prodigy skips; the state holds a d that has grown past d0.
TEST_F(TrainerTest, ProdigyInterruptedThenResumedEqualsUninterrupted) {
  auto config = [&](const std::string& out) {
    train::TrainConfig c = base_config(out);
    c.optimizer_type = "Prodigy";
    // d_coef 100: on the tiny model d_hat is ~3% of d after two steps; this makes d grow at once.
    c.optimizer_args = {"decouple=True", "weight_decay=0.01", "d_coef=100"};
    c.learning_rate = 1;
    c.lr_scheduler = "cosine";
    c.lr_warmup_steps = 2;
    c.max_train_steps = 8;
    return c;
  };
  expect_interrupted_resume_identical(config, [](const train::TrainConfig& resume) {
    torch::serialize::InputArchive archive, groups, group0, options;
    archive.load_from((fs::path(resume.resume) / "optimizer.pt").string());
    archive.read("param_groups", groups);
    groups.read("param_groups/0", group0);
    group0.read("options", options);
    c10::IValue d, k;
    options.read("d", d);
    options.read("k", k);
    std::printf("[train] Prodigy state after step 3: d %.3g, k %lld\n", d.toDouble(), static_cast<long long>(k.toInt()));
    EXPECT_GT(d.toDouble(), 1e-6);  // d0
    EXPECT_EQ(k.toInt(), 2);        // step 1 ran at lr 0 and was skipped
  });
}

using ArgsFor = std::function<std::vector<std::string>(const fs::path& out)>;

// Trains `args` to the end in `full`, and again in `killed`, SIGKILLed once its step-4 state is
// written and resumed from it by a new process: both LoRA files must be byte-identical.
void expect_kill_nine_resume_identical(const ArgsFor& args, const fs::path& full, const fs::path& killed) {
  int status = 0;
  pid_t pid = test::spawn(args(full));
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  pid = test::spawn(args(killed));
  const fs::path state = killed / "tiny-step00000004-state";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (!fs::exists(state) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  ASSERT_TRUE(fs::exists(state));
  const bool killed_mid_run = WIFSIGNALED(status);
  std::vector<std::string> resume = args(killed);
  resume.insert(resume.end(), {"--resume", state.string()});
  pid = test::spawn(resume);
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(file_bytes((full / "tiny.safetensors").string()) == file_bytes((killed / "tiny.safetensors").string()))
      << "final LoRA files differ";
  EXPECT_TRUE(file_bytes((full / "tiny-step00000004.safetensors").string()) ==
              file_bytes((killed / "tiny-step00000004.safetensors").string()))
      << "step-4 LoRA files differ";
  std::printf("[train] killed mid-run: %s\n", killed_mid_run ? "yes" : "no (it had finished)");
}

// A real process killed with SIGKILL after its step-4 state, or stopped with SIGINT, resumed by a
// new process.
TEST_F(TrainerTest, KillNineOrSigintThenResumeIsBitIdentical) {
  test::TempDir full, killed;
  auto args = [&](const fs::path& out) { return train_argv(out); };
  expect_kill_nine_resume_identical(args, full.path(), killed.path());
  int status = 0;
  pid_t pid = 0;
  std::vector<std::string> resume;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);

  // Ctrl-C: the run finishes its step, saves <name>-state, exits 130; the resume completes it.
  test::TempDir stopped;
  pid = test::spawn(args(stopped.path()));
  const fs::path log = stopped / "tiny-log.jsonl";
  auto steps_logged = [&] {
    std::ifstream in(log);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) n += line.find("\"loss\"") != std::string::npos;
    return n;
  };
  while (steps_logged() < 2 && std::chrono::steady_clock::now() < deadline + std::chrono::minutes(3))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  kill(pid, SIGINT);
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "SIGINT killed the process instead of stopping it";
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const fs::path interrupted = stopped / "tiny-state";
  ASSERT_TRUE(fs::exists(interrupted / "state.json"));
  EXPECT_FALSE(fs::exists(stopped / "tiny.safetensors"));
  resume = args(stopped.path());
  resume.insert(resume.end(), {"--resume", interrupted.string()});
  pid = test::spawn(resume);
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(file_bytes((full / "tiny.safetensors").string()) == file_bytes((stopped / "tiny.safetensors").string()))
      << "LoRA after SIGINT + resume differs";
}

// fp16 with dynamic loss scaling: the scale, its growth count and the skipped steps are part of
// the state, so a killed and resumed run still equals the uninterrupted one.
TEST_F(TrainerTest, Fp16KillNineThenResumeIsBitIdentical) {
  test::TempDir full, killed;
  auto args = [&](const fs::path& out) {
    return train_argv(out, {"--mixed_precision", "fp16", "--network_train_unet_only"});
  };
  expect_kill_nine_resume_identical(args, full.path(), killed.path());
  const auto log = train::read_step_records((killed / "tiny-log.jsonl").string());
  ASSERT_EQ(log.size(), 8u);
  for (const auto& r : log) EXPECT_GT(r.loss_scale, 0) << "step " << r.step << " logged no loss scale";
}

TEST_F(TrainerTest, NonFiniteLossStopsWithLastGoodState) {
  test::TempDir out;
  train::TrainConfig c = base_config(out.path().string());
  c.learning_rate = 1e30;  // the first update blows the LoRA up
  c.max_grad_norm = 0;
  c.max_train_steps = 6;
  c.save_state = true;
  c.network_train_unet_only = true;
  try {
    train::run_training(c);
    ADD_FAILURE() << "a run with lr 1e30 did not stop";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("loss is"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  bool state_found = false;
  for (const auto& entry : fs::directory_iterator(out.path()))
    if (entry.path().filename().string().find("-state") != std::string::npos) state_found = true;
  EXPECT_TRUE(state_found);
  EXPECT_FALSE(fs::exists(out / "tiny.safetensors"));
}

// `debug train-step` on the inputs of the trainer's first step, from the LoRA it started with,
// gives the trainer's loss, gradients and updated LoRA. Both run the same float32 kernels on one
// thread; another process may still pick other kernel blocking, so the bounds allow float32
// rounding over the model's reductions (u = 6e-8 times a few hundred terms): 1e-5 relative.
TEST_F(TrainerTest, DebugTrainStepEqualsTheTrainersFirstStep) {
  test::TempDir out;
  train::TrainConfig c = base_config(out.path().string());
  c.network_train_unet_only = true;  // train-step takes the context as given: a UNet LoRA
  c.max_train_steps = 1;
  c.min_snr_gamma = 5;
  c.max_grad_norm = 0.01;  // small enough to clip, so clipping is compared too
  const fs::path init = out / "init.safetensors", inputs = out / "inputs.safetensors";
  double trainer_loss = 0;
  std::vector<std::pair<std::string, torch::Tensor>> trainer_grads;
  train::TrainHooks hooks;
  hooks.after_backward = [&](const train::StepInputs& in, double loss, lora::LoraNetworkImpl& network) {
    trainer_loss = loss;
    for (const auto& [k, g] : lora::lora_gradients(network)) trainer_grads.emplace_back(k, g.clone());
    lora::save_lora(init.string(), network, torch::kFloat, {});
    io::save_safetensors(inputs, {{"latents", in.latents}, {"context", in.context}, {"y", in.y},
                                  {"noise", in.noise}, {"timesteps", in.timesteps}}, {});
  };
  const train::TrainResult r = train::run_training(c, hooks);
  ASSERT_FALSE(trainer_grads.empty());

  setenv("OMP_NUM_THREADS", "1", 1);
  const auto cmd = test::run_lorastudio(str_cat("debug train-step --model ", (*dir_ / "tiny.safetensors").string(),
                                                " --lora-init ", init.string(), " --inputs ", inputs.string(),
                                                " --output ", (out / "step.safetensors").string(),
                                                " --learning_rate 1e-3 --max_grad_norm 0.01 --min_snr_gamma 5"));
  unsetenv("OMP_NUM_THREADS");
  ASSERT_EQ(cmd.exit_code, 0) << cmd.out;
  io::SafetensorsReader step((out / "step.safetensors").string());
  EXPECT_NEAR(step.load("loss").item<double>(), trainer_loss, 1e-5 * std::abs(trainer_loss));
  // lora_down's gradients are exactly 0 at the start (lora_up is 0): relative to the largest one.
  double largest = 0;
  for (const auto& [k, g] : trainer_grads) largest = std::max(largest, g.abs().max().item<double>());
  ASSERT_GT(largest, 0);
  for (const auto& [k, g] : trainer_grads)
    EXPECT_LE((step.load("grad." + k) - g).abs().max().item<double>(), 1e-5 * largest) << k;
  const auto after = lora::load_lora(r.final_lora, models::load_sdxl_checkpoint((*dir_ / "tiny.safetensors").string(), "",
                                                                               {true, false, false}, torch::kCPU, torch::kFloat));
  int compared = 0;
  for (const auto& [k, t] : lora::lora_state(*after.network)) {
    // AdamW's first step moves each weight by about lr * sign(g): 1e-3 * 1e-5 absolute is far
    // below one step and above float32 rounding of weights of size ~0.1.
    EXPECT_TRUE(test::all_close(step.load(k), t, 1e-5, 1e-8)) << k;
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

// A resume may change where and how often files are written, not what the run computes.
TEST_F(TrainerTest, ResumeRefusesChangedTrainingSettingsAndTakesNewOutputs) {
  test::TempDir out;
  train::TrainConfig c = base_config(out.path().string());
  c.max_train_steps = 4;
  train::TrainHooks stop;
  stop.stop_after_step = [](int64_t step) { return step == 2; };
  const train::TrainResult first = train::run_training(c, stop);
  ASSERT_TRUE(first.interrupted);
  train::TrainConfig changed = c;
  changed.resume = first.last_state;
  changed.learning_rate = 2e-3;
  const std::string e = test::error_of([&] { train::run_training(changed); });
  EXPECT_NE(e.find("the resumed run must train with the saved settings; changed: learning_rate 0.001 -> 0.002"),
            std::string::npos) << e;
  train::TrainConfig moved = c;
  moved.resume = first.last_state;
  moved.output_name = "renamed";
  moved.save_every_n_steps = 1;
  const train::TrainResult r = train::run_training(moved);
  EXPECT_EQ(r.steps_done, 4);
  EXPECT_TRUE(fs::exists(out / "renamed.safetensors"));
  EXPECT_TRUE(fs::exists(out / "renamed-step00000003.safetensors"));
}

// With both caches the VAE and the text encoders wait on the CPU and come to the device only for
// sample images; making samples during training (step and epoch cadence) leaves the training
// itself untouched: the same LoRA bytes as the run without samples.
TEST_F(TrainerTest, SamplesFromCachedRunsLeaveTheTrainingUntouched) {
  test::TempDir with, without;
  auto config = [&](const std::string& out) {
    train::TrainConfig c = base_config(out);
    c.max_train_steps = 4;
    c.cache_latents = true;
    c.cache_text_encoder_outputs = true;
    c.network_train_unet_only = true;  // what cached text outputs need
    return c;
  };
  train::TrainConfig c = config(with.path().string());
  const std::string prompts = (with / "prompts.txt").string();
  core::write_file_atomic(prompts, "lsshape, a red circle --w 64 --h 64 --s 2 --d 5\n");
  c.sample_prompts = prompts;
  c.sample_every_n_steps = 2;
  c.sample_every_n_epochs = 1;
  const train::TrainResult a = train::run_training(c);
  const train::TrainResult b = train::run_training(config(without.path().string()));
  ASSERT_FALSE(a.final_lora.empty());
  EXPECT_EQ(file_bytes(a.final_lora), file_bytes(b.final_lora));
  std::vector<std::string> samples;
  for (const auto& e : fs::directory_iterator(with / "sample")) samples.push_back(e.path().filename().string());
  std::sort(samples.begin(), samples.end());
  ASSERT_GE(samples.size(), 2u);
  EXPECT_EQ(samples.front(), "tiny_000002_00_5.png");
  for (const auto& name : samples) EXPECT_GT(fs::file_size(with / "sample" / name), 0u) << name;
}

// The library prints nothing: what the person running it should read (what will run, the caches,
// where an interrupted run continues) comes through hooks.print, which `lorastudio train` prints.
TEST_F(TrainerTest, ReportsThroughThePrintHookAndPrintsNothingItself) {
  test::TempDir out;
  train::TrainConfig c = base_config(out.path().string());
  c.max_train_steps = 4;
  c.cache_latents = true;
  std::vector<std::string> lines;
  train::TrainHooks hooks;
  hooks.print = [&](const std::string& line) { lines.push_back(line); };
  hooks.stop_after_step = [](int64_t step) { return step == 2; };
  ::testing::internal::CaptureStdout();
  const train::TrainResult r = train::run_training(c, hooks);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
  ASSERT_TRUE(r.interrupted);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0].rfind("latent cache ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(" encoded"), std::string::npos) << lines[0];
  const auto start = std::find_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("training 4 steps", 0) == 0; });
  ASSERT_NE(start, lines.end());
  EXPECT_NE(start->find("from step 0"), std::string::npos) << *start;
  EXPECT_EQ(lines.back(), "interrupted at step 2: state saved to " + r.last_state + "; continue with --resume " + r.last_state);
}

// fp16: an injected inf gradient skips the optimizer step, halves the loss scale and leaves the
// LoRA as it was; the next step trains at the halved scale.
TEST_F(TrainerTest, Fp16InfGradientSkipsTheStepAndHalvesTheScale) {
  test::TempDir out;
  train::TrainConfig c = base_config(out.path().string());
  c.network_train_unet_only = true;
  c.mixed_precision = "fp16";
  c.max_train_steps = 2;
  // The LoRA before step 1 (read at its backward) and after it (read at step 2's backward).
  std::vector<std::pair<std::string, torch::Tensor>> before, after_first;
  int backwards = 0;
  train::TrainHooks hooks;
  hooks.after_backward = [&](const train::StepInputs&, double, lora::LoraNetworkImpl& network) {
    auto& into = backwards++ == 0 ? before : after_first;
    if (!into.empty()) return;
    for (const auto& [k, t] : lora::lora_state(network)) into.emplace_back(k, t.clone());
    if (&into == &before) network.parameters().front().mutable_grad().view(-1)[0] = std::numeric_limits<float>::infinity();
  };
  const train::TrainResult r = train::run_training(c, hooks);
  ASSERT_EQ(before.size(), after_first.size());
  for (size_t i = 0; i < before.size(); ++i)
    EXPECT_TRUE(torch::equal(before[i].second, after_first[i].second)) << before[i].first << " changed by a skipped step";
  const auto log = train::read_step_records(r.log_path);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].loss_scale, 65536.0);
  EXPECT_TRUE(log[0].skipped);
  EXPECT_EQ(log[1].loss_scale, 32768.0);
  EXPECT_FALSE(log[1].skipped);
  // Step 2 was taken: the final LoRA differs from the start.
  const auto final_lora = lora::load_lora(r.final_lora, models::load_sdxl_checkpoint((*dir_ / "tiny.safetensors").string(), "",
                                                                                  {true, false, false}, torch::kCPU, torch::kFloat));
  bool changed = false;
  const auto end_state = lora::lora_state(*final_lora.network);
  for (size_t i = 0; i < end_state.size(); ++i) changed = changed || !torch::equal(end_state[i].second, before[i].second);
  EXPECT_TRUE(changed);
}

TEST(TrainLog, ResumeDropsLinesPastTheStateAndCurveIsDrawn) {
  test::TempDir dir;
  const std::string path = (dir / "log.jsonl").string();
  {
    train::TrainLog log(path, 0);
    for (int s = 1; s <= 5; ++s) log.append({s, 1, 1.0 / s, 0.5, {1e-4, 5e-5}, 0.1});
  }
  {
    train::TrainLog log(path, 3);  // resumed from the state of step 3
    log.append({4, 1, 9.0, 9.0, {1e-4}, 0.1});
  }
  const auto r = train::read_step_records(path);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[2].step, 3);
  EXPECT_DOUBLE_EQ(r[2].loss, 1.0 / 3);
  EXPECT_DOUBLE_EQ(r[3].loss, 9.0);
  ASSERT_EQ(r[0].lrs.size(), 2u);
  EXPECT_DOUBLE_EQ(r[0].lrs[1], 5e-5);
  const std::string png = (dir / "loss.png").string();
  train::write_loss_curve(png, r, 320, 200);
  const cv::Mat img = io::read_image_rgb(png);
  ASSERT_EQ(img.cols, 320);
  ASSERT_EQ(img.rows, 200);
  // The curve is drawn: the plot area holds pixels of the mean line's colour (dark blue).
  int blue = 0;
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      const cv::Vec3b p = img.at<cv::Vec3b>(y, x);
      if (p[2] > 120 && p[0] < 80) ++blue;
    }
  EXPECT_GT(blue, 50);
}

TEST(TrainFiles, KohyaNames) {
  EXPECT_EQ(train::epoch_file_name("x", 5), "x-000005");
  EXPECT_EQ(train::step_file_name("x", 100), "x-step00000100");
}

}  // namespace
}  // namespace ls
