// Data-parallel gradient synchronisation as DDP does it (torch's c10d::Reducer,
// torch/csrc/distributed/c10d/reducer.cpp): the parameters are grouped into flat buckets, a hook
// on each parameter's gradient accumulator marks it ready during backward, and each complete
// bucket starts its SUM all-reduce at once, so communication overlaps the rest of the backward.
// Buckets start strictly in index order on every rank: c10d pairs collectives by sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dist/process_group.h"

namespace ls::dist {

class GradientReducer {
 public:
  /// params: leaf tensors with requires_grad (the LoRA parameters; fp32 / bf16 / fp16, CPU or
  /// CUDA), the same list in the same order on every rank, already on their device and in their
  /// dtype (moving one afterwards replaces its gradient accumulator and is refused). Collective:
  /// every rank constructs its reducer at the same point (the ranks' parameter lists are compared).
  /// Buckets hold one dtype and device, about bucket_bytes each (a larger tensor gets its own),
  /// filled in reverse order of `params`: gradients become ready roughly in reverse of forward.
  GradientReducer(ProcessGroup& group, std::vector<at::Tensor> params, int64_t bucket_bytes = 25 << 20);
  /// Removes the hooks (no backward may be running).
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  /// Call before the backward of the micro-batch that closes an optimizer step. Earlier
  /// micro-batches' backward passes reduce nothing (DDP's no_sync); during this one each parameter
  /// is marked ready once its gradient is accumulated into .grad, and complete buckets start their
  /// all-reduce (of a copy of .grad) in bucket order.
  void sync_next_backward();
  /// Starts, in order, the buckets not started yet (a parameter with no gradient on this rank —
  /// no data this step, or no backward at all — contributes zeros), waits for all and writes the
  /// SUM over ranks into every parameter's .grad, the same on every rank. A parameter that had no
  /// gradient on any rank keeps none (its .grad undefined, as one process would leave it).
  /// Once per optimizer step on every rank, after sync_next_backward and the optional backward.
  void finish();

  int64_t bucket_count() const;
  /// Debug counters of the current step (reset by sync_next_backward): buckets started so far,
  /// and those started by a gradient hook while some parameter was still waiting for its
  /// gradient (communication overlapping backward).
  int64_t launched() const;
  int64_t launched_during_backward() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ls::dist
