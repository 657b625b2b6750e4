// The data-parallel layer on the CPU: the torchrun environment read as torchrun writes it, two
// `lorastudio debug all-reduce` ranks averaging over Gloo (buckets, dtypes), and a rank killed
// with SIGKILL making the other stop within its timeout with one line.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "dist/dist_env.h"
#include "support/support.h"

namespace process_group_test {

namespace fs = std::filesystem;
using ls::dist::dist_env_from;

ls::dist::DistEnv env_of(const std::map<std::string, std::string>& vars) {
  return dist_env_from([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  return ls::test::error_of([&] { env_of(vars); });
}

TEST(DistEnv, ReadsTorchrunsVariables) {
  auto single = env_of({});
  EXPECT_FALSE(single.distributed());
  EXPECT_EQ(single.world_size, 1);
  auto e = env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"},
                   {"MASTER_PORT", "1234"}});
  EXPECT_TRUE(e.distributed());
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "node7");
  EXPECT_EQ(e.master_port, 1234);
  EXPECT_EQ(env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}}).local_rank, 1);  // one machine: the rank
  EXPECT_EQ(env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}}).master_port, 29500);
}

TEST(DistEnv, RefusesInconsistentValues) {
  EXPECT_NE(error_of({{"RANK", "0"}}).find("RANK and WORLD_SIZE come together"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("not below WORLD_SIZE"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK='x'"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("not a TCP port"),
            std::string::npos);
}

// A port per test run: parallel ctest jobs and earlier runs must not collide.
int free_port_guess() { return 20000 + static_cast<int>(::getpid() % 20000); }

struct Rank {
  int pid = -1;
  std::string log;
};

Rank start_rank(int rank, int world, int port, const fs::path& out, const std::vector<std::string>& extra) {
  Rank r;
  r.log = out.string() + ".log" + std::to_string(rank);
  std::vector<std::string> argv = {"/usr/bin/env", "RANK=" + std::to_string(rank), "WORLD_SIZE=" + std::to_string(world),
                                   "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port),
                                   ls::test::kLorastudioExe, "debug", "all-reduce", "--output", out.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  r.pid = ls::test::spawn(argv, r.log);
  return r;
}

int wait_exit(int pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(ProcessGroup, TwoGlooRanksAverage) {
  ls::test::TempDir tmp;
  const fs::path out = tmp.path() / "out";
  const int port = free_port_guess();
  auto r0 = start_rank(0, 2, port, out, {"--elements", "8000000", "--timeout_s", "60"});
  auto r1 = start_rank(1, 2, port, out, {"--elements", "8000000", "--timeout_s", "60"});
  EXPECT_EQ(wait_exit(r0.pid), 0) << ls::core::read_file(r0.log);
  EXPECT_EQ(wait_exit(r1.pid), 0) << ls::core::read_file(r1.log);
  for (int rank = 0; rank < 2; ++rank) {
    const fs::path file = out.string() + ".rank" + std::to_string(rank);
    ASSERT_TRUE(fs::exists(file)) << rank;
    auto j = nlohmann::json::parse(ls::core::read_file(file));
    EXPECT_EQ(j["backend"], "gloo");
    // Means of 1 and 2 (plus 0..4): exact in fp32 and fp16.
    auto small = j["small"].get<std::vector<float>>();
    for (int i = 0; i < 5; ++i) EXPECT_EQ(small[i], 1.5f + static_cast<float>(i)) << rank;
    EXPECT_EQ(j["big_min"].get<float>(), 1.5f);
    EXPECT_EQ(j["big_max"].get<float>(), 1.5f);
    EXPECT_EQ(j["half"].get<float>(), 1.5f);
  }
}

TEST(ProcessGroup, AKilledRankStopsTheOtherWithinItsTimeout) {
  ls::test::TempDir tmp;
  const fs::path out = tmp.path() / "out";
  const int port = free_port_guess() + 1;
  const double timeout = 10;
  auto r0 = start_rank(0, 2, port, out, {"--elements", "1000", "--timeout_s", std::to_string(timeout)});
  auto r1 = start_rank(1, 2, port, out, {"--elements", "1000", "--timeout_s", "60", "--hold_s", "120"});
  // Rank 1 joins, then sleeps before the all-reduce; rank 0 waits in it. Kill rank 1 there.
  const fs::path joined = out.string() + ".rank1.joined";
  for (int i = 0; i < 600 && !fs::exists(joined); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(joined)) << ls::core::read_file(r1.log);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // rank 0 is inside the all-reduce
  const auto killed = std::chrono::steady_clock::now();
  ::kill(r1.pid, SIGKILL);
  EXPECT_EQ(wait_exit(r1.pid), 128 + SIGKILL);
  const int code = wait_exit(r0.pid);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  const std::string log = ls::core::read_file(r0.log);
  EXPECT_NE(code, 0) << log;
  EXPECT_LE(seconds, timeout + 5) << log;
  EXPECT_NE(log.find("error: rank 0 of 2: "), std::string::npos) << log;
  EXPECT_NE(log.find("another rank died or hangs"), std::string::npos) << log;
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  EXPECT_FALSE(fs::exists(out.string() + ".rank0"));
}

TEST(ProcessGroup, AHangingRankMakesTheOtherStopAtItsTimeout) {
  ls::test::TempDir tmp;
  const fs::path out = tmp.path() / "out";
  const int port = free_port_guess() + 2;
  const double timeout = 3;
  auto r1 = start_rank(1, 2, port, out, {"--elements", "1000", "--timeout_s", "60", "--hold_s", "60"});
  const auto start = std::chrono::steady_clock::now();
  auto r0 = start_rank(0, 2, port, out, {"--elements", "1000", "--timeout_s", std::to_string(timeout)});
  const int code = wait_exit(r0.pid);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::kill(r1.pid, SIGKILL);
  wait_exit(r1.pid);
  const std::string log = ls::core::read_file(r0.log);
  EXPECT_NE(code, 0) << log;
  // Start-up (~1 s per process here) plus the rendezvous plus one timeout; generous for slow machines.
  EXPECT_LE(seconds, timeout + 20) << log;
  EXPECT_GE(seconds, timeout) << log;
  EXPECT_NE(log.find("another rank died or hangs (timeout 3 s)"), std::string::npos) << log;
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
}

}  // namespace process_group_test
