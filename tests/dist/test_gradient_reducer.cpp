// The gradient reducer with two and three Gloo ranks as threads of this process (each its own
// group, as separate processes would be): the reduced .grad against the gradient of the summed
// loss computed in one process, gradient accumulation, a rank without data, many small buckets
// started during backward, a parameter fed twice, and the refusals.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <exception>
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>

#include "dist/gradient_reducer.h"
#include "dist/process_group.h"
#include "support/support.h"

namespace {

using ls::dist::GradientReducer;
using ls::dist::ProcessGroup;

// A port the kernel just handed out and took back: free unless another process takes it meanwhile.
int gr_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  return ok ? ntohs(addr.sin_port) : 20000 + static_cast<int>(::getpid() % 20000);
}

// body(group) on ranks 0..world-1, each on its own thread with its own Gloo group; the ranks'
// results in rank order, and the first rank's exception rethrown here.
template <typename Result>
std::vector<Result> gr_ranks(int world, const std::function<Result(ProcessGroup&)>& body) {
  const int port = gr_free_port();
  std::vector<Result> results(world);
  std::vector<std::exception_ptr> errors(world);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        ls::dist::DistEnv env;
        env.rank = env.local_rank = rank;
        env.world_size = world;
        env.master_port = port;
        auto group = ProcessGroup::join(env, c10::Device(c10::kCPU), std::chrono::seconds(30));
        results[rank] = body(*group);
      } catch (...) {
        errors[rank] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return results;
}

// Two Linear layers (w1 used twice, a bias on the second) and one parameter each in fp16 (used
// twice) and bf16: three dtypes, and two parameters whose gradients the engine sums before they
// reach .grad.
struct GrModel {
  at::Tensor w1, w2, b2, p16, pbf;
  std::vector<at::Tensor> list() const { return {w1, w2, b2, p16, pbf}; }
};
struct GrBatch {
  at::Tensor x, c, u, v, w;  // rows [2, 4]; output weights [3]; fp16 factors [5], [5]; bf16 factors [6]
};

// Dyadic data, so that every product and sum below is exact in fp32 and float64 alike: x, w1,
// w2, b2, c are multiples of 1/4 in [-1, 1], the fp16 / bf16 values integers in [-3, 3]. Then
// h1 = relu(x w1^T) is in Z/16 with |h1| <= 4, h2 in Z/64 with |h2| <= 16, y in Z/256; every
// gradient is in Z/256 with magnitude <= 2 rows * 3 * 4 = 24 per micro-batch, at most 6 of them
// (ranks x micro-batches) summed: <= 288 * 256 < 2^17, well inside fp32's 24 bits; the fp16 /
// bf16 gradients are integers <= 6 * 6 = 36 (fp16: 11 bits) and 6 * 3 = 18 (bf16: 8 bits). Any
// summation order gives the exact value, so the bound on the difference is 0.
at::Tensor gr_quarters(at::IntArrayRef shape, at::Generator& gen) {
  return torch::randint(-4, 5, shape, gen, torch::kFloat) / 4;
}
at::Tensor gr_ints(at::IntArrayRef shape, at::Generator& gen, at::ScalarType dtype) {
  return torch::randint(-3, 4, shape, gen, torch::kFloat).to(dtype);
}

GrModel gr_model(at::Generator& gen, bool random) {
  if (random) {
    auto n = [&](at::IntArrayRef s, at::ScalarType t) { return torch::randn(s, gen, torch::kFloat).to(t); };
    return {n({4, 4}, torch::kFloat), n({3, 4}, torch::kFloat), n({3}, torch::kFloat), n({5}, torch::kHalf),
            n({6}, torch::kBFloat16)};
  }
  return {gr_quarters({4, 4}, gen), gr_quarters({3, 4}, gen), gr_quarters({3}, gen),
          gr_ints({5}, gen, torch::kHalf), gr_ints({6}, gen, torch::kBFloat16)};
}

GrBatch gr_batch(at::Generator& gen, bool random) {
  if (random) {
    auto n = [&](at::IntArrayRef s, at::ScalarType t) { return torch::randn(s, gen, torch::kFloat).to(t); };
    return {n({2, 4}, torch::kFloat), n({3}, torch::kFloat), n({5}, torch::kHalf), n({5}, torch::kHalf),
            n({6}, torch::kFloat)};
  }
  return {gr_quarters({2, 4}, gen), gr_quarters({3}, gen), gr_ints({5}, gen, torch::kHalf),
          gr_ints({5}, gen, torch::kHalf), gr_ints({6}, gen, torch::kFloat)};
}

// Fresh leaves with the same values; `to_double` for the one-process reference.
GrModel gr_leaves(const GrModel& m, bool to_double) {
  auto leaf = [&](const at::Tensor& t) {
    return (to_double ? t.to(torch::kDouble) : t.clone()).detach().requires_grad_();
  };
  return {leaf(m.w1), leaf(m.w2), leaf(m.b2), leaf(m.p16), leaf(m.pbf)};
}

at::Tensor gr_loss(const GrModel& m, const GrBatch& b) {
  const auto ft = m.w1.scalar_type();
  auto h1 = torch::relu(torch::matmul(b.x.to(ft), m.w1.t()));
  auto h2 = torch::relu(torch::matmul(h1, m.w1.t()));  // w1 a second time
  auto y = torch::matmul(h2, m.w2.t()) + m.b2;         // [2, 3]
  auto half = (m.p16 * b.u.to(m.p16.scalar_type())).sum() + (m.p16 * b.v.to(m.p16.scalar_type())).sum();
  auto brain = (m.pbf.to(ft) * b.w.to(ft)).sum();
  return (y * b.c.to(ft)).sum() + half.to(ft) + brain;
}

// data[rank][micro-batch]
using GrData = std::vector<std::vector<GrBatch>>;

GrData gr_data(at::Generator& gen, const std::vector<int>& micro_batches, bool random) {
  GrData data;
  for (int n : micro_batches) {
    data.emplace_back();
    for (int k = 0; k < n; ++k) data.back().push_back(gr_batch(gen, random));
  }
  return data;
}

// The gradient of the sum of every rank's and micro-batch's loss, in one process, in float64.
std::vector<at::Tensor> gr_reference(const GrModel& init, const GrData& data) {
  GrModel m = gr_leaves(init, /*to_double=*/true);
  at::Tensor total = torch::zeros({}, torch::kDouble);
  for (const auto& rank : data)
    for (const GrBatch& b : rank) total = total + gr_loss(m, b);
  total.backward();
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : m.list()) grads.push_back(p.grad());
  return grads;
}

struct GrRankOut {
  std::vector<at::Tensor> local;    // this rank's .grad before finish (zeros where none)
  std::vector<at::Tensor> reduced;  // .grad after finish
  int64_t buckets = 0;
  int64_t launched_before_sync = 0;
  int64_t launched_during_backward = 0;
  int64_t launched = 0;
};

// One optimizer step of a rank: its micro-batches' backward passes, the last one synced.
// `scrambled`: the reducer gets the parameters out of forward order, so gradients arrive out of
// bucket order (pbf first, its bucket last).
GrRankOut gr_step(ProcessGroup& group, const GrModel& init, const std::vector<GrBatch>& micro, int64_t bucket_bytes,
                  bool scrambled) {
  GrModel m = gr_leaves(init, /*to_double=*/false);
  GradientReducer reducer(group, scrambled ? std::vector<at::Tensor>{m.pbf, m.p16, m.w1, m.w2, m.b2} : m.list(),
                          bucket_bytes);
  GrRankOut out;
  out.buckets = reducer.bucket_count();
  for (size_t k = 0; k < micro.size(); ++k) {
    if (k + 1 == micro.size()) {
      out.launched_before_sync = reducer.launched();
      reducer.sync_next_backward();
    }
    gr_loss(m, micro[k]).backward();
  }
  if (micro.empty()) reducer.sync_next_backward();  // no data for this rank: no backward at all
  out.launched_during_backward = reducer.launched_during_backward();
  for (const at::Tensor& p : m.list()) out.local.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  reducer.finish();
  out.launched = reducer.launched();
  for (const at::Tensor& p : m.list()) out.reduced.push_back(p.grad());
  return out;
}

std::vector<GrRankOut> gr_run(const GrModel& init, const GrData& data, int64_t bucket_bytes = 25 << 20,
                              bool scrambled = false) {
  return gr_ranks<GrRankOut>(static_cast<int>(data.size()), [&](ProcessGroup& g) {
    return gr_step(g, init, data[g.rank()], bucket_bytes, scrambled);
  });
}

// Every rank holds `expected` exactly (see gr_quarters for why 0 is the bound), in each
// parameter's own dtype, bit for bit the same on every rank.
void gr_expect_exact(const std::vector<GrRankOut>& ranks, const std::vector<at::Tensor>& expected) {
  const std::vector<at::ScalarType> dtypes = {torch::kFloat, torch::kFloat, torch::kFloat, torch::kHalf,
                                              torch::kBFloat16};
  for (size_t r = 0; r < ranks.size(); ++r) {
    ASSERT_EQ(ranks[r].reduced.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_TRUE(ranks[r].reduced[i].defined()) << "rank " << r << " parameter " << i;
      EXPECT_EQ(ranks[r].reduced[i].scalar_type(), dtypes[i]) << i;
      EXPECT_TRUE(ls::test::bit_equal(ranks[r].reduced[i].to(torch::kDouble), expected[i]))
          << "rank " << r << " parameter " << i;
      EXPECT_TRUE(ls::test::bit_equal(ranks[r].reduced[i], ranks[0].reduced[i])) << "rank " << r << " parameter " << i;
    }
  }
}

TEST(GradientReducer, TwoRanksGetTheGradientOfTheSummedLoss) {
  at::Generator gen = at::detail::createCPUGenerator(1);
  const GrModel init = gr_model(gen, false);
  const GrData data = gr_data(gen, {1, 1}, false);
  const auto ranks = gr_run(init, data);
  gr_expect_exact(ranks, gr_reference(init, data));
  EXPECT_EQ(ranks[0].buckets, 3);  // fp32, fp16, bf16 under the default 25 MB
  // Sanity of the data: the ranks' own gradients differ, so the sum is not one rank's doubled.
  EXPECT_FALSE(torch::equal(ranks[0].local[0], ranks[1].local[0]));
}

TEST(GradientReducer, ThreeRanksGetTheGradientOfTheSummedLoss) {
  at::Generator gen = at::detail::createCPUGenerator(2);
  const GrModel init = gr_model(gen, false);
  const GrData data = gr_data(gen, {1, 1, 1}, false);
  gr_expect_exact(gr_run(init, data), gr_reference(init, data));
}

double gr_unit_roundoff(at::ScalarType t) {
  return t == torch::kHalf ? std::ldexp(1.0, -11) : t == torch::kBFloat16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -24);
}
double gr_subnormal_step(at::ScalarType t) {
  return t == torch::kHalf ? std::ldexp(1.0, -24) : t == torch::kBFloat16 ? std::ldexp(1.0, -133) : std::ldexp(1.0, -149);
}

TEST(GradientReducer, RandomValuesAreSummedWithinRoundingAndAgreeBitForBit) {
  // Normal values: sums round. Against the ranks' own gradients summed in float64, W - 1 additions
  // in the parameter's dtype, in whatever order Gloo takes, are off by at most
  // (W - 1) u sum_r |g_r| (+ one subnormal step per addition), u = 2^-24 / 2^-11 / 2^-8 for
  // fp32 / fp16 / bf16. Every rank must still hold the same bits: Gloo reduces each chunk once.
  at::Generator gen = at::detail::createCPUGenerator(3);
  const GrModel init = gr_model(gen, true);
  const GrData data = gr_data(gen, {1, 1, 1}, true);
  const auto ranks = gr_run(init, data, /*bucket_bytes=*/40);
  const int world = 3;
  double worst = 0;
  for (size_t i = 0; i < ranks[0].reduced.size(); ++i) {
    const at::ScalarType t = ranks[0].reduced[i].scalar_type();
    at::Tensor exact = torch::zeros_like(ranks[0].reduced[i], torch::kDouble), magnitude = exact.clone();
    for (const auto& r : ranks) {
      exact += r.local[i].to(torch::kDouble);
      magnitude += r.local[i].to(torch::kDouble).abs();
    }
    const at::Tensor bound = (world - 1) * (gr_unit_roundoff(t) * magnitude + gr_subnormal_step(t));
    for (size_t r = 0; r < ranks.size(); ++r) {
      const at::Tensor err = (ranks[r].reduced[i].to(torch::kDouble) - exact).abs();
      EXPECT_TRUE((err <= bound).all().item<bool>()) << "rank " << r << " parameter " << i << " " << t << ": max error "
                                                     << err.max().item<double>();
      EXPECT_TRUE(ls::test::bit_equal(ranks[r].reduced[i], ranks[0].reduced[i])) << "rank " << r << " parameter " << i;
      worst = std::max(worst, (err / bound).max().item<double>());
    }
  }
  RecordProperty("max_error_over_bound", std::to_string(worst));
}

TEST(GradientReducer, AccumulationReducesOnlyTheSyncedBackward) {
  at::Generator gen = at::detail::createCPUGenerator(4);
  const GrModel init = gr_model(gen, false);
  const GrData data = gr_data(gen, {2, 2}, false);  // two micro-batches per rank, the second synced
  const auto ranks = gr_run(init, data);
  for (const auto& r : ranks) EXPECT_EQ(r.launched_before_sync, 0);  // the first backward sent nothing
  gr_expect_exact(ranks, gr_reference(init, data));
}

TEST(GradientReducer, ARankWithoutBackwardGetsTheOthersSum) {
  at::Generator gen = at::detail::createCPUGenerator(5);
  const GrModel init = gr_model(gen, false);
  const GrData data = gr_data(gen, {1, 2, 0}, false);  // rank 2 has no data this step
  const auto ranks = gr_run(init, data);
  for (const at::Tensor& g : ranks[2].local) EXPECT_EQ(g.abs().max().item<double>(), 0.0);
  EXPECT_EQ(ranks[2].launched, ranks[2].buckets);  // all started by finish()
  gr_expect_exact(ranks, gr_reference(init, data));
  // Rank 2 starts its buckets in index order; the others must too, whatever order their
  // gradients come in, or the collectives would pair different buckets.
  gr_expect_exact(gr_run(init, data, /*bucket_bytes=*/1, /*scrambled=*/true), gr_reference(init, data));
}

TEST(GradientReducer, ManySmallBucketsGiveTheSameSumAndStartDuringBackward) {
  at::Generator gen = at::detail::createCPUGenerator(6);
  const GrModel init = gr_model(gen, false);
  const GrData data = gr_data(gen, {1, 1}, false);
  const auto small = gr_run(init, data, /*bucket_bytes=*/1);  // one bucket per parameter
  const auto large = gr_run(init, data);
  for (const auto& r : small) {
    EXPECT_EQ(r.buckets, 5);
    // The bf16 parameter's gradient comes first (its use is the last op of the forward): its
    // bucket was on the wire while w1's gradient was still being computed.
    EXPECT_GE(r.launched_during_backward, 1);
    EXPECT_EQ(r.launched, 5);
  }
  gr_expect_exact(small, gr_reference(init, data));
  for (size_t i = 0; i < small[0].reduced.size(); ++i)
    EXPECT_TRUE(ls::test::bit_equal(small[0].reduced[i], large[0].reduced[i])) << i;
}

TEST(GradientReducer, TwoAccumulationsOfOneParameterInASyncedBackwardAreAnError) {
  at::Generator gen = at::detail::createCPUGenerator(7);
  const GrModel init = gr_model(gen, false);
  const GrBatch batch = gr_batch(gen, false);
  const auto errors = gr_ranks<std::string>(2, [&](ProcessGroup& g) {
    GrModel m = gr_leaves(init, false);
    GradientReducer reducer(g, m.list(), /*bucket_bytes=*/1);
    // w1 and p16 feed the loss twice in one graph: the engine sums first, each is ready once.
    reducer.sync_next_backward();
    gr_loss(m, batch).backward();
    std::string first = ls::test::error_of([&] { reducer.finish(); });
    if (!first.empty()) return "one graph: " + first;
    // Two backward passes in one synced step: every parameter's hook fires twice.
    reducer.sync_next_backward();
    gr_loss(m, batch).backward();
    gr_loss(m, batch).backward();
    return ls::test::error_of([&] { reducer.finish(); });
  });
  for (const std::string& e : errors) {
    EXPECT_NE(e.find("gradient reducer (internal): parameter "), std::string::npos) << e;
    EXPECT_NE(e.find("two separate accumulations in one synced backward"), std::string::npos) << e;
  }
}

TEST(GradientReducer, RefusesMisuse) {
  const auto errors = gr_ranks<std::vector<std::string>>(1, [&](ProcessGroup& g) {
    at::Tensor p = torch::ones({3}).requires_grad_();
    std::vector<std::string> e;
    e.push_back(ls::test::error_of([&] { GradientReducer r(g, {p * 2}); }));
    e.push_back(ls::test::error_of([&] { GradientReducer r(g, {torch::ones({3})}); }));
    e.push_back(ls::test::error_of([&] { GradientReducer r(g, {p, p}); }));
    e.push_back(ls::test::error_of([&] { GradientReducer r(g, {}); }));
    GradientReducer reducer(g, {p});
    e.push_back(ls::test::error_of([&] { reducer.finish(); }));
    reducer.sync_next_backward();
    e.push_back(ls::test::error_of([&] { reducer.sync_next_backward(); }));
    reducer.finish();
    {
      torch::NoGradGuard no_grad;
      p.set_data(p.to(torch::kDouble));  // a new accumulator: the reducer's hook would never fire
    }
    e.push_back(ls::test::error_of([&] { reducer.sync_next_backward(); }));
    return e;
  });
  const std::vector<std::string> expected = {
      "parameter 0 is not a dense leaf tensor that requires grad", "parameter 0 is not a dense leaf tensor",
      "parameter 1 is listed twice", "no parameters to reduce", "finish() without sync_next_backward()",
      "sync_next_backward() twice without finish()", "was moved or cast after the reducer was built"};
  ASSERT_EQ(errors[0].size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NE(errors[0][i].find(expected[i]), std::string::npos) << i << ": " << errors[0][i];
}

TEST(GradientReducer, RefusesDifferentParametersOnAnotherRank) {
  const auto errors = gr_ranks<std::string>(2, [&](ProcessGroup& g) {
    std::vector<at::Tensor> params = {torch::ones({4, 4}).requires_grad_()};
    if (g.rank() == 1) params.push_back(torch::ones({4}).requires_grad_());  // another network
    return ls::test::error_of([&] { GradientReducer r(g, params); });
  });
  EXPECT_EQ(errors[0], "");
  EXPECT_NE(errors[1].find("rank 1 of 2: the gradient reducer's parameters differ from rank 0's (2 parameters in 1 "
                           "buckets here, 1 in 1 there"),
            std::string::npos)
      << errors[1];
}

TEST(GradientReducer, RemovesItsHooks) {
  const auto counts = gr_ranks<std::vector<size_t>>(1, [&](ProcessGroup& g) {
    at::Tensor p = torch::ones({3}).requires_grad_();
    auto accumulator = torch::autograd::impl::grad_accumulator(p);
    std::vector<size_t> n = {accumulator->post_hooks().size()};
    {
      GradientReducer reducer(g, {p});
      n.push_back(accumulator->post_hooks().size());
    }
    n.push_back(accumulator->post_hooks().size());
    // Without the reducer a backward leaves .grad the local gradient.
    (p * 3).sum().backward();
    n.push_back(static_cast<size_t>(p.grad()[0].item<float>()));
    return n;
  });
  EXPECT_EQ(counts[0], (std::vector<size_t>{0, 1, 0, 3}));
}

// A parameter no rank used (the LoRA of a text-encoder layer past the one SDXL reads) keeps no
// gradient, as in one process, so the optimizer skips it (AdamW would otherwise decay it); one
// used on a single rank gets that rank's gradient everywhere.
TEST(GradientReducer, AParameterNoRankUsedKeepsNoGradient) {
  const auto out = gr_ranks<std::vector<double>>(2, [&](ProcessGroup& g) {
    at::Tensor used = torch::ones({2}).requires_grad_();
    at::Tensor unused = torch::ones({3}).requires_grad_();
    at::Tensor rank0_only = torch::ones({1}).requires_grad_();
    GradientReducer reducer(g, {used, unused, rank0_only}, /*bucket_bytes=*/8);
    reducer.sync_next_backward();
    at::Tensor loss = (used * 2).sum();
    if (g.rank() == 0) loss = loss + (rank0_only * 5).sum();
    loss.backward();
    reducer.finish();
    return std::vector<double>{unused.grad().defined() ? 1.0 : 0.0, used.grad()[0].item<double>(),
                               rank0_only.grad()[0].item<double>()};
  });
  for (const auto& r : out) EXPECT_EQ(r, (std::vector<double>{0.0, 4.0, 5.0}));
}

TEST(GradientReducerGroup, SumAndMeanInBucketsOfMixedDtypes) {
  // Rank r holds r + 1 + i: exact sums (3 + 2i) and means in fp32 and fp16.
  const auto out = gr_ranks<std::vector<at::Tensor>>(2, [&](ProcessGroup& g) {
    std::vector<at::Tensor> sum = {torch::arange(5, torch::kFloat) + g.rank() + 1,
                                   torch::arange(3, torch::kHalf) + g.rank() + 1, torch::arange(4, torch::kFloat)};
    std::vector<at::Tensor> mean = {sum[0].clone(), sum[1].clone()};
    g.all_reduce_sum(sum, /*bucket_bytes=*/8);
    g.all_reduce_mean(mean);
    sum.insert(sum.end(), mean.begin(), mean.end());
    return sum;
  });
  for (const auto& r : out) {
    EXPECT_TRUE(ls::test::bit_equal(r[0], torch::arange(5, torch::kFloat) * 2 + 3));
    EXPECT_TRUE(ls::test::bit_equal(r[1], torch::arange(3, torch::kHalf) * 2 + 3));
    EXPECT_TRUE(ls::test::bit_equal(r[2], torch::arange(4, torch::kFloat) * 2));
    EXPECT_TRUE(ls::test::bit_equal(r[3], torch::arange(5, torch::kFloat) + 1.5));
    EXPECT_TRUE(ls::test::bit_equal(r[4], torch::arange(3, torch::kHalf) + 1.5));
  }
}

}  // namespace
