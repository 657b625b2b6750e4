// Data-parallel step time on this machine (issue 18): `lorastudio train` on the tiny model as a
// user runs it, three ways on the same steps, in one run (ratios, not absolute times):
//   one process, batch 2 (the whole machine's threads; and with one thread, as each rank has)
//   two Gloo ranks (--nproc 2), batch 1 each: the same 2 images per step
//   one process, batch 1 with half the threads: one rank's share of the work alone
// The per-step overhead of data parallelism is (two ranks) - (one rank's share alone): the
// gradient all-reduce, the per-step agreement and the wait for the slower rank. The all-reduce of
// a LoRA-sized buffer between two ranks is timed on its own too (`debug all-reduce`).
//
//   bench_train_dist --tokenizer bpe_simple_vocab_16e6.txt.gz [--steps 40] [--rank 8]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench_common.h"
#include "core/atomic_file.h"
#include "data/synthetic.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "train/train_log.h"

namespace fs = std::filesystem;

namespace {

int run_command(std::vector<std::string> argv, const std::vector<std::string>& env, const fs::path& log) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
    if (!freopen(log.c_str(), "w", stdout) || !freopen(log.c_str(), "a", stderr)) _exit(126);
    std::vector<char*> p;
    for (std::string& a : argv) p.push_back(a.data());
    p.push_back(nullptr);
    execv(p[0], p.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// Median step seconds of a run's log, the first `skip` steps (warm-up) left out.
double median_step_seconds(const fs::path& log, int skip) {
  std::vector<double> s;
  for (const ls::train::StepRecord& r : ls::train::read_step_records(log.string()))
    if (r.step > skip) s.push_back(r.seconds);
  return ls::bench::median(s);
}

}  // namespace

int main(int argc, char** argv) {
  const ls::bench::Args args(argc, argv, {"tokenizer", "steps", "rank"}, {});
  const std::string vocab = args.text("tokenizer", "");
  LS_CHECK(!vocab.empty() && fs::exists(vocab), "bench_train_dist: pass --tokenizer bpe_simple_vocab_16e6.txt.gz");
  const int64_t steps = args.integer("steps", 40);
  const int64_t rank = args.integer("rank", 8);
  const std::string exe = (fs::canonical("/proc/self/exe").parent_path().parent_path() / "lorastudio").string();
  LS_CHECK(fs::exists(exe), "bench_train_dist: ", exe, " not found; build the lorastudio target");
  const fs::path dir = fs::temp_directory_path() / ("lorastudio_bench_dist_" + std::to_string(getpid()));
  fs::create_directories(dir);
  {
    torch::manual_seed(3);
    auto m = ls::models::SdxlModel::create(ls::models::SdxlConfig::tiny(), ls::models::Components::all());
    ls::models::save_sdxl_checkpoint((dir / "tiny.safetensors").string(), m, std::nullopt);
  }
  ls::data::SyntheticOptions so;
  so.images = 16;
  so.repeats = 1;
  so.min_side = so.max_side = 128;  // one bucket: every step has its two images
  so.resolution = 128;
  so.seed = 1;
  const std::string toml = ls::data::make_synthetic_dataset((dir / "data").string(), so).config_toml;
  std::string text = ls::core::read_file(toml);
  text.erase(text.find("batch_size"), text.find('\n', text.find("batch_size")) - text.find("batch_size") + 1);
  ls::core::write_file_atomic(toml, text);

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto train = [&](const std::string& name, int batch, int nproc, int threads) {
    std::vector<std::string> a{exe, "train", "--pretrained_model_name_or_path", (dir / "tiny.safetensors").string(),
                               "--dataset_config", toml, "--tokenizer", vocab, "--output_dir", (dir / name).string(),
                               "--output_name", name, "--network_dim", std::to_string(rank), "--learning_rate", "1e-4",
                               "--seed", "1", "--max_train_steps", std::to_string(steps), "--train_batch_size",
                               std::to_string(batch)};
    if (nproc > 1) a.insert(a.end(), {"--nproc", std::to_string(nproc)});
    const int rc = run_command(a, {"OMP_NUM_THREADS=" + std::to_string(threads), "OMP_WAIT_POLICY=PASSIVE"},
                               dir / (name + ".log"));
    LS_CHECK(rc == 0, "bench_train_dist: ", name, " failed; see ", (dir / (name + ".log")).string());
    return median_step_seconds(dir / name / (name + "-log.jsonl"), 3);
  };
  const double one = train("one_batch2", 2, 1, cores);
  const double one_thread = train("one_batch2_t1", 2, 1, 1);
  const double two = train("two_ranks", 1, 2, std::max(1, cores / 2));
  const double share = train("one_batch1", 1, 1, std::max(1, cores / 2));
  ls::bench::print_figure("dist.cores", cores, 0);
  ls::bench::print_figure("dist.one_process_batch2.step_s", one, 4);
  ls::bench::print_figure("dist.one_process_batch2_one_thread.step_s", one_thread, 4);
  ls::bench::print_figure("dist.two_gloo_ranks_batch1.step_s", two, 4);
  ls::bench::print_figure("dist.one_rank_share_alone.step_s", share, 4);
  ls::bench::print_figure("dist.two_ranks_vs_one_process", two / one, 3);
  ls::bench::print_figure("dist.overhead_per_step_s", two - share, 4);

  // The LoRA's gradient volume through the reducer's path, between two ranks, on its own.
  int64_t elements = 0;
  {
    ls::io::SafetensorsReader r(dir / "two_ranks" / "two_ranks.safetensors");
    for (const ls::io::TensorInfo& t : r.tensors()) elements += r.load(t.name).numel();
  }
  const int port = 20000 + static_cast<int>(getpid() % 20000);
  std::vector<pid_t> pids;
  for (int rk = 0; rk < 2; ++rk) {
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
      const std::string log = (dir / ("ar" + std::to_string(rk) + ".log")).string();
      _exit(run_command({exe, "debug", "all-reduce", "--output", (dir / "ar").string(), "--elements",
                         std::to_string(elements)},
                        {"RANK=" + std::to_string(rk), "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1",
                         "MASTER_PORT=" + std::to_string(port), "OMP_NUM_THREADS=1"},
                        log));
    }
    pids.push_back(pid);
  }
  for (const pid_t pid : pids) waitpid(pid, nullptr, 0);
  const auto j = nlohmann::json::parse(ls::core::read_file(dir / "ar.rank0"));
  ls::bench::print_figure("dist.lora_parameters", static_cast<double>(elements), 0);
  ls::bench::print_figure("dist.allreduce_lora_s", j.at("seconds").get<double>(), 5);
  fs::remove_all(dir);
  return 0;
}
