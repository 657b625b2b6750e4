// Who this process is in a data-parallel run, from the environment torchrun, Slurm wrappers and
// accelerate set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): the same variables,
// so lorastudio ranks start under any of them. Without RANK / WORLD_SIZE it is a single process.
#pragma once

#include <functional>
#include <string>

namespace ls::dist {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // the process's index on its machine: its GPU
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;  // torchrun's default
  /// RANK / WORLD_SIZE were set: a launcher started this process as one rank of a group (of one,
  /// possibly: the GPU check runs the NCCL path at world size 1 this way).
  bool launched = false;

  bool distributed() const { return world_size > 1; }
};

/// Reads the variables through `get` (getenv's signature; nullptr = unset). Inconsistent or
/// malformed values are one-line errors naming the variable.
DistEnv dist_env_from(const std::function<const char*(const char*)>& get);
/// The process environment's.
DistEnv dist_env();

}  // namespace ls::dist
