// The data-parallel collectives, through PyTorch's own distributed layer (c10d): a TCPStore at
// MASTER_ADDR:MASTER_PORT for the rendezvous (rank 0 serves it) and a Gloo (CPU) or NCCL (CUDA)
// process group. Gradients are summed (or averaged) in flat buckets of about 25 MB, DDP's
// default, so a rank sends few large messages rather than one per LoRA tensor; the gradient
// reducer launches its buckets asynchronously. Every wait is bounded: a rank that died or hangs
// makes the others fail with one line naming what timed out.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "dist/dist_env.h"

namespace c10d {
class Backend;
class Work;
}  // namespace c10d

namespace ls::dist {

class ProcessGroup;

/// A collective under way (ProcessGroup::all_reduce_sum_async). Its tensor holds the result once
/// wait() has returned; until then neither read nor write it.
class PendingCollective {
 public:
  ~PendingCollective();
  /// Blocks until the result is in place; a rank that died or hangs makes it the group's one-line
  /// ls::Error (bounded by the group's timeout).
  void wait();

 private:
  friend class ProcessGroup;
  struct Work;
  PendingCollective(ProcessGroup& group, std::unique_ptr<Work> work);

  ProcessGroup& group_;
  std::unique_ptr<Work> work_;
};

class ProcessGroup {
 public:
  /// Joins the group `env` describes (blocks until every rank has arrived or `timeout` passes).
  /// CPU tensors go through Gloo, CUDA ones through NCCL; a build without NCCL is told so.
  static std::unique_ptr<ProcessGroup> join(const DistEnv& env, c10::Device device, std::chrono::milliseconds timeout);
  ~ProcessGroup();

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const char* backend() const;  // "gloo" or "nccl"

  /// Replaces every tensor by its sum over the ranks (same shapes and dtypes on every rank), in
  /// flat buckets of consecutive tensors of one dtype and device, about bucket_bytes each.
  void all_reduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes = 25 << 20);
  /// all_reduce_sum, then divided by the world size.
  void all_reduce_mean(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes = 25 << 20);
  /// Starts summing one contiguous tensor over the ranks in place and returns at once. Every rank
  /// must start the same all-reduces in the same order (c10d matches them by sequence).
  std::unique_ptr<PendingCollective> all_reduce_sum_async(const at::Tensor& flat);
  /// Every rank gets root's values.
  void broadcast(const at::Tensor& tensor, int root = 0);
  void barrier();

 private:
  struct Impl;
  ProcessGroup(DistEnv env, std::unique_ptr<Impl> impl);
  friend class PendingCollective;
  void wait(const char* what, const std::function<void()>& run);
  /// Starts the collective `call` issues (process-wide one at a time, see the .cpp) on `tensors`.
  std::unique_ptr<PendingCollective> start(
      const char* what, std::vector<at::Tensor> tensors,
      const std::function<c10::intrusive_ptr<c10d::Work>(c10d::Backend&, std::vector<at::Tensor>&)>& call);

  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ls::dist
