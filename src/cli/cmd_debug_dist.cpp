// `lorastudio debug all-reduce`: joins the data-parallel group the environment describes (RANK,
// WORLD_SIZE, MASTER_ADDR, MASTER_PORT, as torchrun sets them) and averages known tensors over
// it: the stable check that c10d's rendezvous, Gloo / NCCL and lorastudio's bucketing work on a
// machine or a cluster, and the tests' way to kill a rank mid-collective.
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/runtime.h"
#include "dist/process_group.h"

namespace ls::cli {
namespace {

struct AllReduceOptions {
  std::string output;
  std::string device = "cpu";
  double timeout_s = 30;
  double hold_s = 0;
  int64_t elements = 10'000'000;  // 40 MB of fp32: more than one 25 MB bucket
};

void run_all_reduce(const AllReduceOptions& o) {
  const auto env = dist::dist_env();
  const auto device = core::parse_device(o.device);
  auto group = dist::ProcessGroup::join(env, device,
                                        std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000)));
  // Every rank is in the group now: tests wait for this file before killing one mid-collective.
  core::write_file_atomic(o.output + ".rank" + std::to_string(env.rank) + ".joined", "");
  // Rank r holds r + 1 (and r + 1 + i in a small tensor): the mean is (world + 1) / 2 (+ i).
  const float value = static_cast<float>(env.rank + 1);
  auto small = torch::arange(5, torch::kFloat).add(value).to(device);
  auto big = torch::full({o.elements}, value, torch::kFloat).to(device);
  auto half = torch::full({7}, value, torch::kHalf).to(device);
  if (o.hold_s > 0) std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(o.hold_s * 1000)));
  const auto start = std::chrono::steady_clock::now();
  group->all_reduce_mean({small, big, half});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto cpu_small = small.to(torch::kCPU);
  nlohmann::json j = {{"rank", env.rank},
                      {"world_size", env.world_size},
                      {"backend", group->backend()},
                      {"small", std::vector<float>(cpu_small.data_ptr<float>(), cpu_small.data_ptr<float>() + 5)},
                      {"big_min", big.min().item<float>()},
                      {"big_max", big.max().item<float>()},
                      {"half", half.to(torch::kFloat).mean().item<float>()},
                      {"seconds", seconds},
                      {"megabytes", (small.nbytes() + big.nbytes() + half.nbytes()) / 1e6}};
  group->barrier();
  core::write_file_atomic(o.output + ".rank" + std::to_string(env.rank), j.dump() + "\n");
}

}  // namespace

void register_debug_dist(CLI::App& debug) {
  auto opt = std::make_shared<AllReduceOptions>();
  auto* cmd = debug.add_subcommand(
      "all-reduce", "Join the data-parallel group of RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT and average test tensors");
  cmd->add_option("--output", opt->output, "Each rank writes OUTPUT.rank<R> (JSON: the averaged values, seconds)")
      ->required();
  cmd->add_option("--device", opt->device, "cpu (Gloo) or cuda[:N] (NCCL)")->capture_default_str();
  cmd->add_option("--timeout_s", opt->timeout_s, "Longest wait for the other ranks")->capture_default_str();
  cmd->add_option("--hold_s", opt->hold_s, "Sleep this long before the all-reduce (tests: a rank that hangs)");
  cmd->add_option("--elements", opt->elements, "Size of the large fp32 tensor")->capture_default_str();
  cmd->callback([opt] { run_all_reduce(*opt); });
}

}  // namespace ls::cli
