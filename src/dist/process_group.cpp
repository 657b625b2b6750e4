#include "dist/process_group.h"

#include <mutex>

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

// NCCL needs its header from the CUDA toolkit; a CPU-only build gets Gloo alone.
#if defined(USE_C10D_NCCL) && __has_include(<nccl.h>) && __has_include(<cuda_runtime_api.h>)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define LS_HAVE_NCCL 1
#else
#define LS_HAVE_NCCL 0
#endif

#include "core/error.h"

namespace ls::dist {

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  bool nccl = false;
  std::chrono::milliseconds timeout{0};
};

namespace {

// The first line of a c10d / Gloo message (they carry C++ stack traces after it).
std::string pg_first_line(const std::string& text) {
  auto end = text.find('\n');
  return end == std::string::npos ? text : text.substr(0, end);
}

}  // namespace

ProcessGroup::ProcessGroup(DistEnv env, std::unique_ptr<Impl> impl) : env_(std::move(env)), impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;

const char* ProcessGroup::backend() const { return impl_->nccl ? "nccl" : "gloo"; }

std::unique_ptr<ProcessGroup> ProcessGroup::join(const DistEnv& env, c10::Device device,
                                                 std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->timeout = timeout;
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(env.master_port);
    options.isServer = env.rank == 0;
    options.numWorkers = env.world_size;
    options.waitWorkers = true;
    options.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::PrefixStore>(
        "lorastudio", c10::make_intrusive<c10d::TCPStore>(env.master_addr, options));
  } catch (const std::exception& e) {
    LS_FAIL("rank ", env.rank, " of ", env.world_size, ": the rendezvous at ", where, " failed (",
            pg_first_line(e.what()), "); check MASTER_ADDR / MASTER_PORT and that every rank started");
  }
  try {
    if (device.is_cuda()) {
#if LS_HAVE_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      impl->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, options);
      impl->nccl = true;
#else
      LS_FAIL("rank ", env.rank, ": this build has no NCCL (CUDA training across processes needs it); rebuild with "
              "the CUDA toolkit's NCCL, or train on one GPU");
#endif
    } else {
      auto options = c10d::ProcessGroupGloo::Options::create();
      options->timeout = timeout;
      // The address the other ranks reach this one by: loopback for one machine, else the
      // host name's (Gloo resolves it as torch.distributed does).
      const bool local = env.master_addr == "127.0.0.1" || env.master_addr == "localhost";
      options->devices.push_back(local ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                       : c10d::ProcessGroupGloo::createDefaultDevice());
      impl->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, options);
    }
  } catch (const ls::Error&) {
    throw;
  } catch (const std::exception& e) {
    LS_FAIL("rank ", env.rank, " of ", env.world_size, ": joining the process group at ", where, " failed (",
            pg_first_line(e.what()), ")");
  }
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(env, std::move(impl)));
}

void ProcessGroup::wait(const char* what, const std::function<void()>& run) {
  try {
    run();
  } catch (const std::exception& e) {
    LS_FAIL("rank ", env_.rank, " of ", env_.world_size, ": ", what, " failed (", pg_first_line(e.what()),
            "): another rank died or hangs (timeout ", impl_->timeout.count() / 1000.0, " s); stopping");
  }
}

struct PendingCollective::Work {
  const char* what;
  std::vector<at::Tensor> tensors;  // the c10d work refers to them until it is done
  c10::intrusive_ptr<c10d::Work> work;
};

PendingCollective::PendingCollective(ProcessGroup& group, std::unique_ptr<Work> work)
    : group_(group), work_(std::move(work)) {}
PendingCollective::~PendingCollective() = default;

void PendingCollective::wait() {
  group_.wait(work_->what, [&] { work_->work->wait(); });
}

namespace {

// c10d's FlightRecorder (a process-wide singleton, on by default) adds a group to a std::map
// outside its own lock the first time the group records a collective (torch 2.11,
// FlightRecorderDetail.hpp, recordWithResetEnabled), so two groups of one process starting
// collectives at once corrupt that map. A process normally holds one group, but the tests run
// ranks as threads: starting is serialised here (it only enqueues; waiting is not).
std::mutex& pg_start_mutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace

std::unique_ptr<PendingCollective> ProcessGroup::start(
    const char* what, std::vector<at::Tensor> tensors,
    const std::function<c10::intrusive_ptr<c10d::Work>(c10d::Backend&, std::vector<at::Tensor>&)>& call) {
  auto work = std::make_unique<PendingCollective::Work>();
  work->what = what;
  work->tensors = std::move(tensors);
  // Starting can fail too (the connection to a dead rank is already closed): same message.
  wait(what, [&] {
    std::lock_guard<std::mutex> lock(pg_start_mutex());
    work->work = call(*impl_->backend, work->tensors);
  });
  return std::unique_ptr<PendingCollective>(new PendingCollective(*this, std::move(work)));
}

std::unique_ptr<PendingCollective> ProcessGroup::all_reduce_sum_async(const at::Tensor& flat) {
  LS_CHECK(flat.is_contiguous(), "all_reduce_sum_async: the tensor must be contiguous (a flat bucket)");
  return start("a gradient all-reduce", {flat},
               [](c10d::Backend& b, std::vector<at::Tensor>& t) { return b.allreduce(t); });
}

void ProcessGroup::all_reduce_sum(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  // World size 1 runs the collectives too: the one-GPU check exercises the NCCL path.
  if (tensors.empty()) return;
  torch::NoGradGuard no_grad;
  // Buckets of consecutive tensors of one dtype and device, flattened into one buffer each.
  size_t begin = 0;
  while (begin < tensors.size()) {
    size_t end = begin;
    int64_t bytes = 0;
    while (end < tensors.size() && tensors[end].scalar_type() == tensors[begin].scalar_type() &&
           tensors[end].device() == tensors[begin].device() &&
           (end == begin || bytes + tensors[end].nbytes() <= static_cast<size_t>(bucket_bytes))) {
      bytes += static_cast<int64_t>(tensors[end].nbytes());
      ++end;
    }
    std::vector<at::Tensor> flat_parts;
    for (size_t i = begin; i < end; ++i) flat_parts.push_back(tensors[i].reshape({-1}));
    at::Tensor buffer = at::cat(flat_parts);
    all_reduce_sum_async(buffer)->wait();
    int64_t at = 0;
    for (size_t i = begin; i < end; ++i) {
      const int64_t n = tensors[i].numel();
      tensors[i].copy_(buffer.narrow(0, at, n).view(tensors[i].sizes()));
      at += n;
    }
    begin = end;
  }
}

void ProcessGroup::all_reduce_mean(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  all_reduce_sum(tensors, bucket_bytes);
  // The same elementwise division the flat buffer would get: identical values, one mechanism.
  torch::NoGradGuard no_grad;
  for (const at::Tensor& t : tensors) t.div_(env_.world_size);
}

void ProcessGroup::broadcast(const at::Tensor& tensor, int root) {
  c10d::BroadcastOptions options;
  options.rootRank = root;
  start("a broadcast", {tensor}, [&](c10d::Backend& b, std::vector<at::Tensor>& t) {
    return b.broadcast(t, options);
  })->wait();
}

void ProcessGroup::barrier() {
  // A one-element all-reduce: Gloo's barrier has no timeout of its own on every version.
  at::Tensor one = impl_->nccl ? torch::zeros({1}, torch::kCUDA) : torch::zeros({1});
  start("a barrier", {one}, [](c10d::Backend& b, std::vector<at::Tensor>& t) { return b.allreduce(t); })->wait();
}

}  // namespace ls::dist
