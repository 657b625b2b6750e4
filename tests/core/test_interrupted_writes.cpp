// core::clean_interrupted_writes: what a writer killed mid-write leaves — AtomicFile temps, a state
// folder's temp, a state swapped out between its two renames — is removed or put back; a live
// writer's entries, other files and hidden folders are left alone.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "core/atomic_file.h"
#include "support/support.h"

namespace interrupted_writes_test {

namespace fs = std::filesystem;

// The pid of a process that has ended (and been reaped): no process has it now.
std::string iw_dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) _exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return std::to_string(pid);
}

std::vector<std::string> iw_names(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir).generic_string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(InterruptedWrites, DeadWritersTempsGoAndACutSwapIsPutBack) {
  ls::test::TempDir dir;
  const std::string dead = iw_dead_pid(), live = std::to_string(::getppid());
  ls::core::write_file_atomic(dir / "a.safetensors", "whole");
  ls::core::write_file_atomic(dir / ("a.safetensors.tmp." + dead), "half");
  ls::core::write_file_atomic(dir / ("b.png.tmp." + live), "being written");  // a running writer's
  ls::core::write_file_atomic(dir / "notes.tmp.txt", "a user's file");
  // A swap cut after `x-state` was renamed aside: the old one comes back; `y-state` has its new one.
  fs::create_directories(dir / ("x-state.old-" + dead));
  ls::core::write_file_atomic(dir / ("x-state.old-" + dead) / "state.json", "old");
  fs::create_directories(dir / ("x-state.tmp-" + dead));
  fs::create_directories(dir / "y-state");
  fs::create_directories(dir / ("y-state.old-" + dead));
  fs::create_directories(dir / "cells");
  ls::core::write_file_atomic(dir / "cells" / ("c.png.tmp." + dead), "half");
  fs::create_directories(dir / ".hidden");
  ls::core::write_file_atomic(dir / ".hidden" / ("h.tmp." + dead), "another tool's");

  EXPECT_EQ(ls::core::clean_interrupted_writes(dir.path()).size(), 4u);
  EXPECT_EQ(iw_names(dir.path()),
            (std::vector<std::string>{".hidden", ".hidden/h.tmp." + dead, "a.safetensors", "b.png.tmp." + live, "cells",
                                      "cells/c.png.tmp." + dead, "notes.tmp.txt", "x-state", "x-state/state.json",
                                      "y-state"}));
  EXPECT_EQ(ls::core::read_file(dir / "x-state/state.json"), "old");
  EXPECT_EQ(ls::core::clean_interrupted_writes(dir.path(), true).size(), 1u);  // cells/, not .hidden/
  EXPECT_FALSE(fs::exists(dir / "cells" / ("c.png.tmp." + dead)));
  EXPECT_TRUE(fs::exists(dir / ".hidden" / ("h.tmp." + dead)));
  EXPECT_TRUE(ls::core::clean_interrupted_writes(dir / "no-such-folder").empty());
}

}  // namespace interrupted_writes_test
