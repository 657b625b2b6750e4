// LyCORIS LoHa, LoKr and DoRA modules against lycoris-lora 4.1.3's own numbers
// (tests/fixtures/lycoris/lycoris_{fp64,fp32}.safetensors, made by scripts/make-lycoris-fixtures):
// each case's tensors, loaded under lycoris' keys into a module built from the case's options
// (so the tensor names and shapes, the LoKr factorisation included, must be lycoris'), give the
// layer's forward, the merged weight and the gradients.
//
// Bounds: the deltas are sums of at most in*k*k = 144 products of up to four factors (plus a
// norm for DoRA), each value O(1). In float64 (unit roundoff 1.1e-16) a different summation
// order moves the result by under 144 * 4 * 1.1e-16 ~ 6e-14 relative: 1e-12 holds with margin and
// is far inside the 1e-6. In float32 (6e-8) the same count gives ~3.5e-5 worst case; the
// errors of a norm over thousands of elements are random-walk sized (sqrt(n) * 6e-8 ~ 1e-6), so
// the 1e-5 is the bound.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "io/safetensors.h"
#include "lora/adapters.h"
#include "lora/lokr_module.h"
#include "nn/layers.h"
#include "support/support.h"

namespace {

using ls::lora::Algo;
using ls::lora::LoraModuleOptions;

std::string lycoris_fixture(const std::string& name) {
  return (std::filesystem::path(ls::test::kSourceDir) / "tests/fixtures/lycoris" / name).string();
}

struct LycorisCase {
  std::string name;
  nlohmann::json cfg;
};

LoraModuleOptions options_of(const nlohmann::json& c) {
  LoraModuleOptions o;
  const std::string algo = c.at("algo");
  o.algo = algo == "loha" ? Algo::kLoha : algo == "lokr" ? Algo::kLokr : Algo::kLora;
  o.lycoris = true;
  o.rank = c.at("lora_dim");
  o.alpha = c.at("alpha");
  o.tucker = c.value("use_tucker", false);
  o.factor = c.value("factor", -1);
  o.decompose_both = c.value("decompose_both", false);
  o.full_matrix = c.value("full_matrix", false);
  o.unbalanced_factorization = c.value("unbalanced_factorization", false);
  o.dora = c.value("weight_decompose", false);
  o.wd_on_out = c.value("wd_on_out", true);
  return o;
}

class LycorisModules : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    reader_ = std::make_unique<ls::io::SafetensorsReader>(lycoris_fixture("lycoris_" + GetParam() + ".safetensors"));
    const auto meta = nlohmann::json::parse(reader_->metadata().at("cases"));
    ASSERT_EQ(meta.at("lycoris"), "4.1.3");
    for (const auto& [name, cfg] : meta.at("cases").items()) cases_.push_back({name, cfg});
    dtype_ = GetParam() == "fp64" ? torch::kDouble : torch::kFloat;
    tol_ = GetParam() == "fp64" ? 1e-12 : 1e-5;
  }

  torch::Tensor get(const LycorisCase& c, const std::string& key) const {
    return reader_->load(c.name + "/" + key).to(dtype_);
  }

  // The case's layer with the fixture's weights, wrapped as a target.
  ls::lora::LoraTarget layer(const LycorisCase& c) const {
    const auto& l = c.cfg.at("layer");
    ls::lora::LoraTarget t;
    if (l.at("kind") == "linear") t.linear = ls::nn::Linear(l.at("i").get<int64_t>(), l.at("o").get<int64_t>());
    else
      t.conv = ls::nn::Conv2d(l.at("i").get<int64_t>(), l.at("o").get<int64_t>(), l.at("k").get<int64_t>(),
                              l.at("s").get<int64_t>(), l.at("p").get<int64_t>());
    torch::NoGradGuard no_grad;
    if (t.conv) {
      t.conv->to(dtype_);
      t.conv->weight.copy_(get(c, "weight"));
      t.conv->bias.copy_(get(c, "bias"));
    } else {
      t.linear->to(dtype_);
      t.linear->weight.copy_(get(c, "weight"));
      t.linear->bias.copy_(get(c, "bias"));
    }
    for (auto& p : (t.conv ? t.conv->parameters() : t.linear->parameters())) p.set_requires_grad(false);
    return t;
  }

  // The module's tensors from the fixture; their names and shapes must be exactly lycoris'.
  void load_state(const LycorisCase& c, ls::lora::AdapterModule& m) const {
    std::set<std::string> file;
    for (const auto& info : reader_->tensors())
      if (info.name.rfind(c.name + "/p.", 0) == 0) file.insert(info.name.substr(c.name.size() + 3));
    std::set<std::string> ours;
    torch::NoGradGuard no_grad;
    for (const auto& [key, t] : m.named_state()) {
      ours.insert(key);
      ASSERT_TRUE(file.count(key)) << c.name << ": lycoris has no " << key;
      const torch::Tensor v = get(c, "p." + key);
      ASSERT_EQ(v.sizes(), t.sizes()) << c.name << " " << key;
      torch::Tensor live = t;
      live.copy_(v);
    }
    EXPECT_EQ(ours, file) << c.name;
  }

  torch::Tensor forward(ls::lora::LoraTarget t, const torch::Tensor& x) const {
    return t.conv ? t.conv->forward(x) : t.linear->forward(x);
  }

  std::unique_ptr<ls::io::SafetensorsReader> reader_;
  std::vector<LycorisCase> cases_;
  c10::ScalarType dtype_ = torch::kDouble;
  double tol_ = 0;
};

TEST_P(LycorisModules, ForwardMergedWeightAndGradientsEqualLycoris) {
  ASSERT_EQ(cases_.size(), 18u);
  double worst_out = 0, worst_merged = 0, worst_grad = 0;
  for (const LycorisCase& c : cases_) {
    SCOPED_TRACE(c.name);
    const ls::lora::LoraTarget t = layer(c);
    auto m = ls::lora::make_adapter(t, options_of(c.cfg));
    m->to(dtype_);
    load_state(c, *m);
    m->set_multiplier(c.cfg.at("multiplier").get<double>());
    t.add_adapter(m);
    const torch::Tensor out = forward(t, get(c, "x"));
    const double e_out = ls::test::norm_rel_error(out, get(c, "out"));
    EXPECT_LE(e_out, tol_);
    worst_out = std::max(worst_out, e_out);
    (out * get(c, "g")).sum().backward();
    for (const auto& [key, p] : m->named_parameters().pairs()) {
      ASSERT_TRUE(p.grad().defined()) << key;
      const double e = ls::test::norm_rel_error(p.grad(), get(c, "grad." + key));
      EXPECT_LE(e, tol_) << key;
      worst_grad = std::max(worst_grad, e);
    }
    torch::NoGradGuard no_grad;
    const torch::Tensor w = t.weight();
    const torch::Tensor merged = w + m->weight_delta();
    const double e_merged = ls::test::norm_rel_error(merged, get(c, "merged"));
    EXPECT_LE(e_merged, tol_);
    worst_merged = std::max(worst_merged, e_merged);
    if (c.cfg.at("algo") != "locon" && !m->options().dora) {
      // lycoris 4.1.3's get_merged_weight scales LoHa / LoKr by alpha/rank once more than its
      // forward does (get_weight already holds the scale); the fixture pins that quirk.
      const torch::Tensor twice = w + (merged - w) * m->scale();
      EXPECT_LE(ls::test::norm_rel_error(get(c, "merged_lycoris"), twice), tol_);
    }
  }
  std::printf("%s: worst relative error out %.2e, merged %.2e, gradients %.2e over %zu cases\n", GetParam().c_str(),
              worst_out, worst_merged, worst_grad, cases_.size());
}

// What a file's shapes say the module is: the same options (LoKr factors, Tucker, DoRA axis) as
// the ones it was made with, so lycoris' files load into the same modules.
TEST_P(LycorisModules, FileShapesGiveTheModuleBack) {
  for (const LycorisCase& c : cases_) {
    SCOPED_TRACE(c.name);
    const ls::lora::LoraTarget t = layer(c);
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto& info : reader_->tensors())
      if (info.name.rfind(c.name + "/p.", 0) == 0) shapes[info.name.substr(c.name.size() + 3)] = info.shape;
    LoraModuleOptions o = ls::lora::adapter_options_from_shapes(shapes, t.weight().sizes(), c.name);
    o.alpha = get(c, "p.alpha").item<double>();
    auto m = ls::lora::make_adapter(t, o);
    m->to(dtype_);
    load_state(c, *m);
    m->set_multiplier(c.cfg.at("multiplier").get<double>());
    torch::NoGradGuard no_grad;
    t.add_adapter(m);
    EXPECT_LE(ls::test::norm_rel_error(forward(t, get(c, "x")), get(c, "out")), tol_);
    EXPECT_EQ(m->options().dora, c.cfg.value("weight_decompose", false));
    EXPECT_EQ(m->options().wd_on_out, c.cfg.value("wd_on_out", true));
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LycorisModules, ::testing::Values("fp64", "fp32"));

// lycoris' factorization, values printed by lycoris 4.1.3's own function (its docstring's rows for
// 360 are out of date: the code gives 18x20 and 15x24).
TEST(LycorisFactorization, MatchesLycorisTable) {
  using ls::lora::lokr_factorization;
  const std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>> table = {
      {127, -1, 1, 127}, {128, -1, 8, 16}, {250, -1, 10, 25}, {360, -1, 18, 20}, {512, -1, 16, 32},
      {1024, -1, 32, 32}, {128, 2, 2, 64}, {250, 4, 2, 125}, {360, 8, 8, 45}, {512, 8, 8, 64},
      {1024, 16, 16, 64}, {250, 16, 10, 25}, {360, 16, 15, 24}};
  for (const auto& [dim, factor, m, n] : table) {
    EXPECT_EQ(lokr_factorization(dim, factor), std::make_pair(m, n)) << dim << " factor " << factor;
  }
}

// Fresh modules change nothing (lycoris' init zeroes one factor; DoRA's magnitude is |W|).
TEST(LycorisInit, FreshModulesLeaveTheLayerUnchanged) {
  torch::manual_seed(7);
  ls::nn::Linear base(32, 24);
  ls::lora::LoraTarget t;
  t.linear = base;
  const torch::Tensor x = torch::randn({2, 32});
  for (Algo algo : {Algo::kLora, Algo::kLoha, Algo::kLokr}) {
    for (bool dora : {false, true}) {
      LoraModuleOptions o;
      o.algo = algo, o.lycoris = true, o.dora = dora, o.rank = 2;
      auto m = ls::lora::make_adapter(t, o);
      EXPECT_LE(m->delta(x).abs().max().item<double>(), 1e-6) << ls::lora::algo_name(algo) << dora;
    }
  }
}

// Over a bfloat16 base (mixed-precision training) DoRA's magnitude is made and kept in float32:
// exactly the base's row norms, so the trainer's float32 module starts as the identity.
TEST(LycorisInit, DoraMagnitudeOfAHalfBaseStaysFloat32) {
  torch::manual_seed(8);
  ls::nn::Linear base(32, 24);
  base->to(torch::kBFloat16);
  ls::lora::LoraTarget t;
  t.linear = base;
  LoraModuleOptions o;
  o.algo = Algo::kLoha, o.lycoris = true, o.dora = true, o.rank = 2;
  auto m = ls::lora::make_adapter(t, o);
  ASSERT_EQ(m->dora_scale_.scalar_type(), torch::kFloat);
  const torch::Tensor norms = base->weight.to(torch::kFloat).norm(2, {1}, true);
  EXPECT_TRUE(torch::equal(m->dora_scale_, norms));
}

}  // namespace
