// Data-parallel training on the CPU (Gloo), through `lorastudio train --nproc N` as a user runs it:
// two ranks train the LoRA one process trains with the whole step as its batch (batch 1 x 2 ranks
// = batch 2; batch 1 x 2 ranks x accumulation 2 = batch 4), only rank 0 writes files, a rank
// killed with SIGKILL stops its peer with one line and the pair resumes to the uninterrupted
// result, and a resume with another number of ranks is refused.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "core/atomic_file.h"
#include "io/safetensors.h"
#include "support/support.h"
#include "support/training_data.h"
#include "train/train_log.h"

namespace fs = std::filesystem;

namespace ls {
namespace {

class TrainDataParallel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    test::write_tiny_checkpoint(*dir_ / "tiny.safetensors");
    // The shared dataset without its batch_size, so --train_batch_size sets it.
    const std::string toml = test::write_training_dataset(*dir_ / "data", 0);
    const std::string text = std::regex_replace(core::read_file(toml), std::regex("batch_size = [0-9]+\n"), "");
    toml_ = (*dir_ / "data" / "no-batch.toml").string();
    core::write_file_atomic(toml_, text);
  }
  static void TearDownTestSuite() { delete dir_; }

  // `lorastudio train` on the tiny model: `steps` steps with AdamW, a LoRA and a state every 4.
  static std::vector<std::string> argv(const fs::path& out, int steps, const std::vector<std::string>& extra) {
    std::vector<std::string> a{test::kLorastudioExe, "train", "--pretrained_model_name_or_path",
                               (*dir_ / "tiny.safetensors").string(), "--dataset_config", toml_, "--tokenizer",
                               test::kClipVocab, "--output_dir", out.string(), "--output_name", "tiny",
                               "--network_dim", "4", "--network_alpha", "2", "--learning_rate", "1e-3", "--seed", "7",
                               "--max_train_steps", std::to_string(steps), "--save_every_n_steps", "4",
                               "--save_state", "--ddp_timeout", "0.5"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  static int run(const std::vector<std::string>& a, const std::string& log) {
    int status = 0;
    waitpid(test::spawn(a, log), &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  static test::TempDir* dir_;
  static std::string toml_;
};
test::TempDir* TrainDataParallel::dir_ = nullptr;
std::string TrainDataParallel::toml_;

// max |a - b| / max |a| over every tensor of two LoRA files with the same keys.
double worst_relative_difference(const fs::path& a, const fs::path& b) {
  io::SafetensorsReader ra(a), rb(b);
  EXPECT_EQ(ra.tensors().size(), rb.tensors().size());
  double worst = 0;
  for (const io::TensorInfo& t : ra.tensors()) {
    const torch::Tensor x = ra.load(t.name).to(torch::kDouble), y = rb.load(t.name).to(torch::kDouble);
    const double scale = x.abs().max().item<double>();
    if (scale == 0) {
      EXPECT_EQ(y.abs().max().item<double>(), 0) << t.name;
      continue;
    }
    worst = std::max(worst, (x - y).abs().max().item<double>() / scale);
  }
  return worst;
}

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.insert(fs::relative(e.path(), dir).string());
  return out;
}

// Float32 reduction order is the only difference: a batch of 2 against two batches of 1 summed
// reorders the sums of the backward (up to ~1e4 terms here), a relative error between sqrt(n) u
// (6e-6, typical) and n u (6e-4, the worst case) per gradient, u = 6e-8. With Adam's eps at 1e-4,
// above every gradient of this tiny model, an update is proportional to the gradient, so the
// weights inherit that relative error: 1e-4 of the largest weight. (With the default eps 1e-8 an
// update is about g / |g|, and a gradient near zero turns its rounding into a visible share of
// one step: measured 2e-3 of the largest weight after 8 steps, the same in PyTorch's DDP.)
constexpr double kReductionTolerance = 1e-4;

TEST_F(TrainDataParallel, TwoRanksTrainWhatOneProcessTrainsWithTheWholeStep) {
  struct Case {
    const char* what;
    std::vector<std::string> one, two;
  };
  const Case cases[] = {
      // The ranks also compare LoRA checksums after every step.
      {"2 ranks x batch 1 vs 1 process x batch 2",
       {"--train_batch_size", "2"},
       {"--train_batch_size", "1", "--nproc", "2", "--ddp_check_every_n_steps", "1"}},
      {"2 ranks x batch 1 x accumulation 2 vs 1 process x batch 4",
       {"--train_batch_size", "4"},
       {"--train_batch_size", "1", "--gradient_accumulation_steps", "2", "--nproc", "2"}},
      // 12 images an epoch in steps of 8: the short step's 4 are all rank 0's, rank 1 idles.
      {"2 ranks x batch 4 vs 1 process x batch 8 (rank 1 idle)",
       {"--train_batch_size", "8"},
       {"--train_batch_size", "4", "--nproc", "2"}},
  };
  for (Case c : cases) {
    for (auto* args : {&c.one, &c.two}) args->insert(args->end(), {"--optimizer_args", "eps=1e-4"});
    test::TempDir one, two;
    ASSERT_EQ(run(argv(one.path(), 8, c.one), (one / "run.log").string()), 0) << core::read_file(one / "run.log");
    ASSERT_EQ(run(argv(two.path(), 8, c.two), (two / "run.log").string()), 0) << core::read_file(two / "run.log");
    const double worst = worst_relative_difference(one / "tiny.safetensors", two / "tiny.safetensors");
    std::printf("[dist] %s: worst relative difference of the LoRA after 8 steps %.3g\n", c.what, worst);
    EXPECT_LT(worst, kReductionTolerance);
    // The step's loss is the mean over its images however they were split.
    const auto la = train::read_step_records((one / "tiny-log.jsonl").string());
    const auto lb = train::read_step_records((two / "tiny-log.jsonl").string());
    ASSERT_EQ(la.size(), 8u);
    ASSERT_EQ(lb.size(), 8u);
    for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i].loss, lb[i].loss, 1e-5 * std::abs(la[i].loss)) << i;
    // One set of outputs, written by rank 0, which its log says.
    std::set<std::string> expected = names_in(one.path()), got = names_in(two.path());
    EXPECT_EQ(expected, got);
    const std::string log = core::read_file(two / "tiny-log.jsonl");
    EXPECT_NE(log.find("\"rank\":0"), std::string::npos) << log.substr(0, 300);
    EXPECT_NE(log.find("\"world_size\":2"), std::string::npos);
    EXPECT_NE(core::read_file(two / "run.log").find("rank 0 writes the outputs"), std::string::npos);
  }
}

// Both ranks fill the caches, each its share of the entries (by key), then read the others'.
TEST_F(TrainDataParallel, RanksFillTheCachesTogether) {
  test::TempDir out;
  const fs::path cache = fs::path(toml_).parent_path() / ".lorastudio-cache";
  fs::remove_all(cache);
  const std::vector<std::string> extra = {"--train_batch_size", "1", "--nproc", "2", "--cache_latents",
                                          "--cache_text_encoder_outputs", "--network_train_unet_only"};
  ASSERT_EQ(run(argv(out.path(), 4, extra), (out / "run.log").string()), 0) << core::read_file(out / "run.log");
  const std::string said = core::read_file(out / "run.log");
  // Rank 0's report: its share encoded (this data gives each rank one), the rest cached already or
  // left to rank 1 (which of the two depends on which rank got there first); rank 0 never encodes
  // rank 1's share.
  for (const char* what : {"latent cache", "text-encoder cache"}) {
    std::smatch m;
    const std::regex line(std::string(what) + " [^\n]*: ([0-9]+) cached, ([0-9]+) encoded(?: here, ([0-9]+) by the other ranks)?");
    ASSERT_TRUE(std::regex_search(said, m, line)) << said;
    const int cached = std::stoi(m[1]), encoded = std::stoi(m[2]), others = m[3].matched ? std::stoi(m[3]) : 0;
    EXPECT_EQ(cached + encoded + others, 6) << m[0];
    EXPECT_LT(encoded, 6) << m[0];
    EXPECT_GT(encoded, 0) << m[0];
  }
  size_t latents = 0, texts = 0;
  for (const auto& e : fs::directory_iterator(cache / "latents")) latents += e.path().extension() == ".safetensors";
  for (const auto& e : fs::directory_iterator(cache / "text")) texts += e.path().extension() == ".safetensors";
  EXPECT_EQ(latents, 6u);  // one entry per image (flip_aug off)
  EXPECT_EQ(texts, 6u);    // one per distinct caption
  for (const auto& e : fs::recursive_directory_iterator(cache))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  fs::remove_all(cache);
}

// The launcher's child whose environment says RANK=<rank>.
pid_t rank_child(pid_t launcher, int rank) {
  std::ifstream in("/proc/" + std::to_string(launcher) + "/task/" + std::to_string(launcher) + "/children");
  const std::string wanted = "RANK=" + std::to_string(rank);
  pid_t p = 0;
  while (in >> p) {
    std::ifstream env("/proc/" + std::to_string(p) + "/environ");
    std::string var;
    while (std::getline(env, var, '\0'))
      if (var == wanted) return p;
  }
  return -1;
}

TEST_F(TrainDataParallel, KilledRankStopsItsPeerAndThePairResumesToTheSameLora) {
  const std::vector<std::string> two = {"--train_batch_size", "1", "--nproc", "2"};
  test::TempDir full, killed;
  ASSERT_EQ(run(argv(full.path(), 12, two), (full / "run.log").string()), 0) << core::read_file(full / "run.log");

  const std::string log = (killed / "run.log").string();
  const pid_t launcher = test::spawn(argv(killed.path(), 12, two), log);
  const fs::path state = killed / "tiny-step00000004-state";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (!fs::exists(state) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fs::exists(state)) << core::read_file(log);
  const pid_t rank1 = rank_child(launcher, 1);
  ASSERT_GT(rank1, 0);
  const auto killed_at = std::chrono::steady_clock::now();
  kill(rank1, SIGKILL);
  int status = 0;
  waitpid(launcher, &status, 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  const std::string said = core::read_file(log);
  std::printf("[dist] rank 1 killed: the launcher exited %d after %.2f s\n",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1, seconds);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_LT(seconds, 30 + 30);  // ddp_timeout 0.5 min, plus the launcher's grace
  EXPECT_NE(said.find("error: rank 0 of 2: "), std::string::npos) << said;
  EXPECT_TRUE(fs::exists(state / "state.json"));

  // Another number of ranks cannot continue it (the images of each step depend on it).
  test::TempDir elsewhere;
  std::vector<std::string> single = argv(elsewhere.path(), 12, {"--train_batch_size", "1", "--resume", state.string()});
  ASSERT_NE(run(single, (elsewhere / "run.log").string()), 0);
  EXPECT_NE(core::read_file(elsewhere / "run.log").find("saved by a run of 2 rank(s)"), std::string::npos)
      << core::read_file(elsewhere / "run.log");

  std::vector<std::string> resume = argv(killed.path(), 12, two);
  resume.insert(resume.end(), {"--resume", state.string()});
  ASSERT_EQ(run(resume, (killed / "resume.log").string()), 0) << core::read_file(killed / "resume.log");
  EXPECT_TRUE(core::read_file(full / "tiny.safetensors") == core::read_file(killed / "tiny.safetensors"))
      << "the resumed pair's LoRA differs from the uninterrupted pair's (worst relative difference "
      << worst_relative_difference(full / "tiny.safetensors", killed / "tiny.safetensors") << ")";
}

TEST_F(TrainDataParallel, CtrlCOnTheLauncherStopsBothRanksAndSavesOneState) {
  const std::vector<std::string> two = {"--train_batch_size", "1", "--nproc", "2"};
  test::TempDir full, stopped;
  ASSERT_EQ(run(argv(full.path(), 8, two), (full / "run.log").string()), 0);
  const std::string log = (stopped / "run.log").string();
  const pid_t launcher = test::spawn(argv(stopped.path(), 8, two), log);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  const fs::path jsonl = stopped / "tiny-log.jsonl";
  while (std::chrono::steady_clock::now() < deadline &&
         (!fs::exists(jsonl) || train::read_step_records(jsonl.string()).size() < 2))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  kill(launcher, SIGINT);
  int status = 0;
  waitpid(launcher, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << core::read_file(log);
  EXPECT_EQ(WEXITSTATUS(status), 130) << core::read_file(log);
  const std::string said = core::read_file(log);
  size_t interrupts = 0;
  for (size_t at = said.find("interrupted at step"); at != std::string::npos; at = said.find("interrupted at step", at + 1))
    ++interrupts;
  EXPECT_EQ(interrupts, 1u) << said;
  ASSERT_TRUE(fs::exists(stopped / "tiny-state" / "state.json"));
  std::vector<std::string> resume = argv(stopped.path(), 8, two);
  resume.insert(resume.end(), {"--resume", (stopped / "tiny-state").string()});
  ASSERT_EQ(run(resume, (stopped / "resume.log").string()), 0) << core::read_file(stopped / "resume.log");
  EXPECT_TRUE(core::read_file(full / "tiny.safetensors") == core::read_file(stopped / "tiny.safetensors"));
}

}  // namespace
}  // namespace ls
