// The data-parallel collectives, through PyTorch's own distributed layer (c10d): a TCPStore at
// MASTER_ADDR:MASTER_PORT for the rendezvous (rank 0 serves it) and a Gloo (CPU) or NCCL (CUDA)
// process group. Gradients are averaged in flat buckets of about 25 MB, DDP's default, so a
// rank sends few large messages rather than one per LoRA tensor. Every wait is bounded: a rank
// that died or hangs makes the others fail with one line naming what timed out.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "dist/dist_env.h"

namespace ls::dist {

class ProcessGroup {
 public:
  /// Joins the group `env` describes (blocks until every rank has arrived or `timeout` passes).
  /// CPU tensors go through Gloo, CUDA ones through NCCL; a build without NCCL is told so.
  static std::unique_ptr<ProcessGroup> join(const DistEnv& env, c10::Device device, std::chrono::milliseconds timeout);
  ~ProcessGroup();

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const char* backend() const;  // "gloo" or "nccl"

  /// Replaces every tensor by its mean over the ranks (same shapes and dtypes on every rank).
  void all_reduce_mean(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes = 25 << 20);
  /// Every rank gets root's values.
  void broadcast(const at::Tensor& tensor, int root = 0);
  void barrier();

 private:
  struct Impl;
  ProcessGroup(DistEnv env, std::unique_ptr<Impl> impl);
  void wait(const char* what, const std::function<void()>& run);

  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ls::dist
