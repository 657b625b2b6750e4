// The bucketed, backward-overlapping gradient SUM of data-parallel training. The readiness
// signal is a post hook on each parameter's AccumulateGrad node, as c10d::Reducer installs
// (torch/csrc/distributed/c10d/reducer.cpp): the engine runs a node's post hooks right after
// it, so .grad already holds the new gradient when the hook fires.
#include "dist/gradient_reducer.h"

#include <algorithm>
#include <mutex>
#include <numeric>
#include <string>
#include <unordered_set>

#include <torch/torch.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>

#include "core/error.h"

namespace ls::dist {

namespace {

using torch::autograd::variable_list;

struct GrReadyHook : torch::autograd::FunctionPostHook {
  explicit GrReadyHook(std::function<void()> ready) : ready_(std::move(ready)) {}
  variable_list operator()(const variable_list& grad_inputs, const variable_list& /*grad_outputs*/) override {
    ready_();
    return grad_inputs;
  }
  std::function<void()> ready_;
};

// FNV-1a over 64-bit words: a short fingerprint of the bucket layout, compared across ranks.
uint64_t gr_mix(uint64_t hash, int64_t value) {
  for (int byte = 0; byte < 8; ++byte) {
    hash ^= (static_cast<uint64_t>(value) >> (8 * byte)) & 0xff;
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace

struct GradientReducer::Impl {
  struct Slot {
    at::Tensor param;
    size_t bucket = 0;
    int64_t offset = 0;  // elements into the bucket's flat buffer
    // The tensor holds its accumulator only weakly: without this reference a new one, without
    // the hook, would be made for the next backward.
    std::shared_ptr<torch::autograd::Node> accumulator;
    uintptr_t hook_key = 0;
    bool ready = false;
    bool used = false;  // had a gradient on this rank when its bucket was sent
  };
  struct Bucket {
    std::vector<size_t> slots;
    at::Tensor flat;  // reused every step: no allocation per step
    int64_t waiting = 0;  // slots not ready yet in this backward
    std::unique_ptr<PendingCollective> pending;
  };

  explicit Impl(ProcessGroup& g) : group(g) {}

  void assign_buckets(int64_t bucket_bytes);
  void check_same_on_every_rank();
  void mark_ready(size_t slot);
  void launch_complete_buckets(bool from_hook);
  void launch(Bucket& bucket);
  at::Tensor part(const Bucket& bucket, const Slot& slot) const {
    return bucket.flat.narrow(0, slot.offset, slot.param.numel()).view(slot.param.sizes());
  }

  ProcessGroup& group;
  std::vector<Slot> slots;      // in the constructor's order
  std::vector<Bucket> buckets;  // in launch order
  // Hooks run on the autograd engine's threads (one per CUDA device), finish() on the caller's.
  mutable std::mutex mutex;
  bool armed = false;  // between sync_next_backward and finish
  size_t next_bucket = 0;
  int64_t not_ready = 0;
  int64_t launched = 0;
  int64_t launched_during_backward = 0;
  int64_t fired_twice = -1;  // the first parameter whose gradient arrived twice in a synced backward
  at::Tensor used;           // per slot: ranks on which it had a gradient (summed in finish)
  std::string hook_error;    // a launch that failed inside a hook, thrown by finish()
};

void GradientReducer::Impl::assign_buckets(int64_t bucket_bytes) {
  // Walk the parameters in reverse; each (dtype, device) keeps one open bucket, closed when the
  // next tensor would take it past bucket_bytes. A bucket is expected complete when the last
  // member of the walk is ready, so buckets are launched in the order of their last members.
  struct Open {
    at::ScalarType dtype;
    c10::Device device;
    size_t bucket;
    int64_t bytes;
  };
  std::vector<Open> open;
  std::vector<std::vector<size_t>> members;
  std::vector<size_t> last_step;
  const size_t n = slots.size();
  for (size_t step = 0; step < n; ++step) {
    const size_t i = n - 1 - step;
    const at::Tensor& p = slots[i].param;
    const int64_t bytes = static_cast<int64_t>(p.nbytes());
    auto it = std::find_if(open.begin(), open.end(),
                           [&](const Open& o) { return o.dtype == p.scalar_type() && o.device == p.device(); });
    if (it != open.end() && it->bytes + bytes > bucket_bytes) {
      open.erase(it);
      it = open.end();
    }
    if (it == open.end()) {
      open.push_back({p.scalar_type(), p.device(), members.size(), 0});
      it = open.end() - 1;
      members.emplace_back();
      last_step.push_back(0);
    }
    members[it->bucket].push_back(i);
    last_step[it->bucket] = step;
    it->bytes += bytes;
  }
  std::vector<size_t> order(members.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return last_step[a] < last_step[b]; });
  for (size_t b : order) {
    Bucket bucket;
    int64_t numel = 0;
    for (size_t i : members[b]) {
      slots[i].bucket = buckets.size();
      slots[i].offset = numel;
      numel += slots[i].param.numel();
    }
    bucket.slots = std::move(members[b]);
    bucket.flat = at::empty({numel}, slots[bucket.slots.front()].param.options().requires_grad(false));
    buckets.push_back(std::move(bucket));
  }
}

void GradientReducer::Impl::check_same_on_every_rank() {
  // Different layouts would pair buffers of different sizes (a Gloo error) or hang: say so here.
  uint64_t hash = 14695981039346656037ull;
  for (const Bucket& b : buckets) {
    hash = gr_mix(hash, static_cast<int64_t>(b.flat.scalar_type()));
    hash = gr_mix(hash, static_cast<int64_t>(b.flat.device().type()));
    for (size_t i : b.slots) {
      hash = gr_mix(hash, static_cast<int64_t>(i));
      for (int64_t size : slots[i].param.sizes()) hash = gr_mix(hash, size);
    }
  }
  const std::vector<int64_t> mine = {static_cast<int64_t>(slots.size()), static_cast<int64_t>(buckets.size()),
                                     static_cast<int64_t>(hash)};
  at::Tensor signature = torch::tensor(mine, torch::kLong).to(slots.front().param.device());
  group.broadcast(signature, 0);
  signature = signature.cpu();
  const int64_t* root = signature.data_ptr<int64_t>();
  LS_CHECK(std::equal(mine.begin(), mine.end(), root), "rank ", group.rank(), " of ", group.world_size(),
           ": the gradient reducer's parameters differ from rank 0's (", mine[0], " parameters in ", mine[1],
           " buckets here, ", root[0], " in ", root[1], " there, or other shapes, dtypes or bucket size): "
           "every rank must build the same LoRA network with the same options");
}

void GradientReducer::Impl::mark_ready(size_t i) {
  std::lock_guard<std::mutex> lock(mutex);
  if (!armed) return;  // a micro-batch before the step's last: its gradient just accumulates
  Slot& slot = slots[i];
  if (slot.ready) {
    if (fired_twice < 0) fired_twice = static_cast<int64_t>(i);
    return;
  }
  slot.ready = true;
  --not_ready;
  if (--buckets[slot.bucket].waiting == 0) launch_complete_buckets(/*from_hook=*/true);
}

void GradientReducer::Impl::launch_complete_buckets(bool from_hook) {
  // Strictly in bucket order, whatever order the gradients came in: every rank issues the same
  // sequence of collectives.
  while (hook_error.empty() && next_bucket < buckets.size() && buckets[next_bucket].waiting == 0) {
    if (from_hook) {
      // An exception thrown here would leave the backward half done on this rank only.
      try {
        launch(buckets[next_bucket]);
      } catch (const std::exception& e) {
        hook_error = e.what();
        return;
      }
      if (not_ready > 0) ++launched_during_backward;
    } else {
      launch(buckets[next_bucket]);
    }
    ++launched;
    ++next_bucket;
  }
}

void GradientReducer::Impl::launch(Bucket& bucket) {
  torch::NoGradGuard no_grad;  // hooks run under the backward's grad mode (on for create_graph)
  for (size_t i : bucket.slots) {
    Slot& slot = slots[i];
    at::Tensor dst = part(bucket, slot);
    const at::Tensor& grad = slot.param.grad();
    slot.used = grad.defined();
    if (slot.used)
      dst.copy_(grad);
    else
      dst.zero_();  // not used on this rank this step
  }
  bucket.pending = group.all_reduce_sum_async(bucket.flat);
}

GradientReducer::GradientReducer(ProcessGroup& group, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : impl_(std::make_unique<Impl>(group)) {
  LS_CHECK(!params.empty(), "gradient reducer: no parameters to reduce; pass the trainable LoRA parameters");
  LS_CHECK(bucket_bytes > 0, "gradient reducer: bucket_bytes must be positive, got ", bucket_bytes);
  std::unordered_set<const c10::TensorImpl*> seen;
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i];
    LS_CHECK(p.defined() && p.requires_grad() && p.is_leaf() && p.layout() == at::kStrided, "gradient reducer: parameter ",
             i, " is not a dense leaf tensor that requires grad; pass the trainable LoRA parameters themselves");
    LS_CHECK(seen.insert(p.unsafeGetTensorImpl()).second, "gradient reducer: parameter ", i,
             " is listed twice; pass each parameter once");
    Impl::Slot slot;
    slot.param = p;
    impl_->slots.push_back(std::move(slot));
  }
  impl_->assign_buckets(bucket_bytes);
  impl_->check_same_on_every_rank();
  Impl* impl = impl_.get();
  for (size_t i = 0; i < impl->slots.size(); ++i) {
    Impl::Slot& slot = impl->slots[i];
    slot.accumulator = torch::autograd::impl::grad_accumulator(slot.param);
    LS_CHECK(slot.accumulator, "gradient reducer: parameter ", i, " has no gradient accumulator; pass leaf tensors");
    slot.hook_key = slot.accumulator->add_post_hook(std::make_unique<GrReadyHook>([impl, i] { impl->mark_ready(i); }));
  }
}

GradientReducer::~GradientReducer() {
  for (Impl::Slot& slot : impl_->slots)
    if (slot.accumulator) slot.accumulator->del_post_hook(slot.hook_key);
}

void GradientReducer::sync_next_backward() {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mutex);
  LS_CHECK(!m.armed, "gradient reducer: sync_next_backward() twice without finish(); call finish() once per "
                     "optimizer step");
  for (size_t i = 0; i < m.slots.size(); ++i) {
    const Impl::Slot& slot = m.slots[i];
    // set_data with another dtype or device drops the tensor's accumulator: ours would never fire.
    LS_CHECK(torch::autograd::impl::try_get_grad_accumulator(slot.param) == slot.accumulator,
             "gradient reducer: parameter ", i, " was moved or cast after the reducer was built; build the "
             "GradientReducer once the LoRA parameters are on their device and in their dtype");
  }
  for (Impl::Slot& slot : m.slots) slot.ready = false;
  for (Impl::Bucket& b : m.buckets) {
    b.waiting = static_cast<int64_t>(b.slots.size());
    b.pending.reset();
  }
  m.next_bucket = 0;
  m.not_ready = static_cast<int64_t>(m.slots.size());
  m.launched = m.launched_during_backward = 0;
  m.fired_twice = -1;
  m.hook_error.clear();
  m.armed = true;
}

void GradientReducer::finish() {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mutex);
  LS_CHECK(m.armed, "gradient reducer: finish() without sync_next_backward(); call sync_next_backward() before "
                    "the backward of each step's last micro-batch, on every rank");
  m.armed = false;
  if (!m.hook_error.empty()) LS_FAIL(m.hook_error);  // already the group's one-line message
  for (size_t b = m.next_bucket; b < m.buckets.size(); ++b) m.buckets[b].waiting = 0;
  m.launch_complete_buckets(/*from_hook=*/false);
  torch::NoGradGuard no_grad;
  // A parameter no rank computed a gradient for (e.g. the LoRA of a text-encoder layer after the
  // one SDXL reads) keeps no gradient, as in one process: the optimizer then skips it (no weight
  // decay). DDP keeps the same "globally unused" rule.
  std::vector<float> used_here(m.slots.size());
  for (size_t i = 0; i < m.slots.size(); ++i) used_here[i] = m.slots[i].used ? 1.0f : 0.0f;
  m.used = torch::tensor(used_here).to(m.slots.front().param.device());
  m.group.all_reduce_sum({m.used});
  const at::Tensor used_anywhere = m.used.cpu();
  const float* used = used_anywhere.data_ptr<float>();
  for (Impl::Bucket& bucket : m.buckets) {
    bucket.pending->wait();
    bucket.pending.reset();
    for (size_t i : bucket.slots) {
      Impl::Slot& slot = m.slots[i];
      at::Tensor& grad = slot.param.mutable_grad();
      if (used[i] == 0) {
        grad = at::Tensor();
        continue;
      }
      if (!grad.defined()) grad = at::empty_like(slot.param, at::MemoryFormat::Preserve);
      grad.copy_(m.part(bucket, slot));
    }
  }
  // Checked after the waits, so every rank has issued the same collectives and none hangs here.
  LS_CHECK(m.fired_twice < 0, "gradient reducer (internal): parameter ", m.fired_twice,
           " received its gradient in two separate accumulations in one synced backward, after its bucket "
           "may have been sent (a parameter used in two checkpointed segments?); report this with the "
           "training options");
}

int64_t GradientReducer::bucket_count() const { return static_cast<int64_t>(impl_->buckets.size()); }

int64_t GradientReducer::launched() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->launched;
}

int64_t GradientReducer::launched_during_backward() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->launched_during_backward;
}

}  // namespace ls::dist
