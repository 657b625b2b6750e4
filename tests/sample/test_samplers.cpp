// The samplers against k-diffusion's own runs on an analytic denoiser (shared/fixtures/samplers.safetensors:
// every step's x and denoised, the sigmas of every model call, the noise calls, the float64 re-run),
// DDIM against its closed-form VP update in float64, and A1111's sampler names.
#include <cmath>
#include <iostream>
#include <map>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/noise_schedule.h"
#include "sample/samplers.h"
#include "sample/sigmas.h"
#include "support/support.h"

// Named, not anonymous: unity builds compile the sample tests as one translation unit.
namespace samplers_test {

using namespace ls::sample;
using ls::models::NoiseSchedule;

const ls::io::SafetensorsReader& fixture() {
  static const ls::io::SafetensorsReader reader(std::string(ls::test::kFixturesDir) + "/samplers.safetensors");
  return reader;
}

// The fixture's denoiser, op for op: 0.8 * tanh(x) + 0.05 * x / (1 + sigma.reshape(-1, 1, 1, 1)).
at::Tensor analytic(const at::Tensor& x, const at::Tensor& sigma) {
  return at::tanh(x) * 0.8 + x * 0.05 / (sigma.reshape({-1, 1, 1, 1}) + 1);
}

// One sampler run with the fixture's inputs in `dtype`, recording what the sampler asked for.
struct Trace {
  std::vector<double> model_sigmas;
  std::vector<std::pair<double, double>> noise_calls;
  std::vector<at::Tensor> x_after, denoised;  // per step
  at::Tensor out;
};

Trace run_fixture(const std::string& name, at::ScalarType dtype) {
  const auto& f = fixture();
  Trace trace;
  const auto model = [&](const at::Tensor& x, const at::Tensor& sigma) {
    EXPECT_EQ(sigma.scalar_type(), x.scalar_type());
    EXPECT_EQ(sigma.sizes(), at::IntArrayRef({x.size(0)}));
    trace.model_sigmas.push_back(sigma[0].item<double>());
    return analytic(x, sigma);
  };
  const auto noise = [&](double sigma, double sigma_next) {
    const auto k = static_cast<int64_t>(trace.noise_calls.size());
    trace.noise_calls.emplace_back(sigma, sigma_next);
    return f.load("noise_" + std::to_string(k)).to(dtype);
  };
  const auto cb = [&](const StepInfo& info) {
    EXPECT_EQ(info.step, static_cast<int64_t>(trace.denoised.size()));
    EXPECT_EQ(info.steps, 10);
    if (info.step > 0) trace.x_after.push_back(info.x);
    trace.denoised.push_back(info.denoised);
  };
  const auto sigmas = f.load("sigmas").to(dtype);
  trace.out = run_sampler(parse_sampler(name), model, f.load("x_init").to(dtype), sigmas, noise, cb);
  trace.x_after.push_back(trace.out);
  return trace;
}

struct Case {
  std::string name;
  double tol;  // README: per step max|x - x_ref| <= tol * max|x_ref|
};
const std::vector<Case> kCases = {
    {"euler", 9e-7},          {"euler_ancestral", 2e-6}, {"heun", 8e-7},          {"dpmpp_2m", 1e-6},
    {"dpmpp_2m_sde", 2e-6},   {"lms", 8e-7},             {"dpm_2", 9e-7},         {"dpm_2_ancestral", 3e-6},
    {"dpmpp_2s_ancestral", 2e-6}, {"dpmpp_sde", 2e-6},   {"dpmpp_3m_sde", 2e-6},
};

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

class GoldenSamplers : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenSamplers, Float32StepsMatchKDiffusion) {
  const auto& c = GetParam();
  const auto& f = fixture();
  const auto trace = run_fixture(c.name, at::kFloat);
  ASSERT_EQ(trace.x_after.size(), 10u);
  ASSERT_EQ(trace.denoised.size(), 10u);
  double worst = 0, worst_denoised = 0;
  int exact = 0;
  for (int k = 0; k < 10; ++k) {
    const auto x_ref = f.load(c.name + "/x_step_" + std::to_string(k));
    const auto d_ref = f.load(c.name + "/denoised_" + std::to_string(k));
    const double scale = x_ref.abs().max().item<double>();
    const double err = max_abs(trace.x_after[k], x_ref);
    EXPECT_LE(err, c.tol * scale) << c.name << " step " << k;
    EXPECT_LE(max_abs(trace.denoised[k], d_ref), c.tol * d_ref.abs().max().item<double>()) << c.name << " step " << k;
    worst = std::max(worst, err / scale);
    worst_denoised = std::max(worst_denoised, max_abs(trace.denoised[k], d_ref));
    exact += trace.x_after[k].equal(x_ref) ? 1 : 0;
  }
  EXPECT_TRUE(trace.out.equal(f.load(c.name + "/out")) || max_abs(trace.out, f.load(c.name + "/out")) <=
              c.tol * f.load(c.name + "/out").abs().max().item<double>());
  std::cout << "[measured] " << c.name << ": float32 worst step norm rel " << worst << ", denoised max abs "
            << worst_denoised << ", bit-exact steps " << exact << "/10\n";

  const auto model_sigmas = f.load(c.name + "/model_sigmas");
  ASSERT_EQ(static_cast<int64_t>(trace.model_sigmas.size()), model_sigmas.size(0)) << c.name;
  for (size_t i = 0; i < trace.model_sigmas.size(); ++i) {
    const double ref = model_sigmas[static_cast<int64_t>(i)].item<double>();
    EXPECT_NEAR(trace.model_sigmas[i], ref, 1e-6 * ref) << c.name << " model call " << i;
  }
  if (f.contains(c.name + "/noise_calls")) {
    const auto calls = f.load(c.name + "/noise_calls");
    ASSERT_EQ(static_cast<int64_t>(trace.noise_calls.size()), calls.size(0)) << c.name;
    for (size_t i = 0; i < trace.noise_calls.size(); ++i) {
      const auto row = calls[static_cast<int64_t>(i)];
      EXPECT_NEAR(trace.noise_calls[i].first, row[0].item<double>(), 1e-6 * row[0].item<double>()) << c.name << i;
      EXPECT_NEAR(trace.noise_calls[i].second, row[1].item<double>(), 1e-6 * row[1].item<double>()) << c.name << i;
    }
  } else {
    EXPECT_TRUE(trace.noise_calls.empty()) << c.name;
  }
}

TEST_P(GoldenSamplers, Float64RunMatchesKDiffusionFloat64) {
  const auto& c = GetParam();
  const auto trace = run_fixture(c.name, at::kDouble);
  EXPECT_EQ(trace.out.scalar_type(), at::kDouble);
  const auto ref64 = fixture().load("f64/" + c.name + "/out");
  const auto ref32 = fixture().load(c.name + "/out");
  const double scale = ref64.abs().max().item<double>();
  EXPECT_LE(max_abs(trace.out, ref64), 1e-12 * scale) << c.name;
  // And the float32 fixture sits within the README tolerance of our float64 run.
  EXPECT_LE(max_abs(ref32, trace.out), c.tol * scale) << c.name;
  std::cout << "[measured] " << c.name << ": float64 out vs k-diffusion float64 max abs " << max_abs(trace.out, ref64)
            << "\n";
}

INSTANTIATE_TEST_SUITE_P(GoldenKDiffusion, GoldenSamplers, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

TEST(GoldenSamplersLms, CoefficientsMatchScipyQuad) {
  const auto coeffs = fixture().load("lms/coeffs");  // [10, 4]
  const auto sigmas = fixture().load("sigmas").to(at::kDouble);
  const std::vector<double> s(sigmas.data_ptr<double>(), sigmas.data_ptr<double>() + sigmas.numel());
  double worst = 0;
  for (int64_t i = 0; i < 10; ++i) {
    const auto c = lms_coefficients(s, i, 4);
    ASSERT_EQ(static_cast<int64_t>(c.size()), std::min<int64_t>(i + 1, 4));
    for (size_t j = 0; j < c.size(); ++j) {
      const double ref = coeffs[i][static_cast<int64_t>(j)].item<double>();
      worst = std::max(worst, std::abs(c[j] - ref) / std::abs(ref));
      EXPECT_NEAR(c[j], ref, 1e-12 * std::abs(ref)) << i << "," << j;
    }
  }
  std::cout << "[measured] lms coefficients max rel vs scipy " << worst << "\n";
}

// ---- DDIM ----

const NoiseSchedule& sdxl() {
  static const NoiseSchedule s = NoiseSchedule::sdxl();
  return s;
}

// A1111's DDIM step in its own (variance-preserving) convention, in float64, with the denoiser written in
// VP terms: x0 = D(x_vp / sqrt(a), sigma), eps = (x_vp - sqrt(a) x0) / sqrt(1 - a).
at::Tensor ddim_closed_form(at::Tensor x_ve, const std::vector<int64_t>& timesteps, double eta,
                            const std::vector<at::Tensor>& noises) {
  const auto acp = sdxl().alphas_cumprod.to(at::kDouble);
  const auto a_at = [&](int64_t t) { return acp[t].item<double>(); };
  const size_t n = timesteps.size();
  double a_t = a_at(timesteps[n - 1]);
  auto x = x_ve * std::sqrt(a_t);  // VE -> VP
  for (size_t index = n - 1, call = 0; index >= 1; --index) {
    a_t = a_at(timesteps[index]);
    const double a_prev = a_at(timesteps[index - 1]);
    const double sigma = std::sqrt((1 - a_t) / a_t);
    const auto x0 = analytic(x / std::sqrt(a_t), at::full({x.size(0)}, sigma, x.options()));
    const auto e_t = (x - std::sqrt(a_t) * x0) / std::sqrt(1 - a_t);
    const double s_t = eta * std::sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev));
    x = std::sqrt(a_prev) * x0 + std::sqrt(1 - a_prev - s_t * s_t) * e_t;
    if (eta > 0) x = x + s_t * noises[call++];
  }
  return x / std::sqrt(a_at(timesteps[0]));  // VP -> VE
}

TEST(Ddim, MatchesClosedFormVpUpdateInFloat64) {
  const auto timesteps_t = ddim_timesteps(sdxl(), 10);
  const std::vector<int64_t> timesteps(timesteps_t.data_ptr<int64_t>(), timesteps_t.data_ptr<int64_t>() + 10);
  // Sigmas from the float64 alphas_cumprod so both sides see the same noise levels.
  const auto acp = sdxl().alphas_cumprod.to(at::kDouble).index_select(0, timesteps_t).flip(0);
  const auto sigmas = ((1 - acp) / acp).sqrt();  // [10] descending
  const auto x_init = fixture().load("x_init").to(at::kDouble) / fixture().load("sigmas")[0].item<double>() *
                      sigmas[0].item<double>();
  std::vector<at::Tensor> noises;
  for (int k = 0; k < 9; ++k) noises.push_back(fixture().load("noise_" + std::to_string(k)).to(at::kDouble));
  for (const double eta : {0.0, 0.5, 1.0}) {
    size_t calls = 0;
    int64_t model_calls = 0;
    const auto noise = [&](double, double) { return noises.at(calls++); };
    const auto model = [&](const at::Tensor& x, const at::Tensor& s) { ++model_calls; return analytic(x, s); };
    const auto out = sample_ddim(model, x_init, sigmas, noise, {}, eta);
    const auto expected = ddim_closed_form(x_init, timesteps, eta, noises);
    const double err = max_abs(out, expected) / expected.abs().max().item<double>();
    EXPECT_LE(err, 1e-12) << "eta " << eta;
    EXPECT_EQ(model_calls, 9);  // A1111: len(timesteps) - 1 model calls, ending at timestep 1
    EXPECT_EQ(calls, eta > 0 ? 9u : 0u);
    std::cout << "[measured] ddim eta " << eta << ": float64 vs closed-form VP norm rel " << err << "\n";
  }
  // The float32 path (table sigmas, float32 x) stays close to the float64 closed form.
  const auto x32 = x_init.to(at::kFloat) / sigmas[0].item<double>() * ddim_sigmas(sdxl(), 10)[0].item<double>();
  const auto spec = parse_sampler("DDIM");
  const auto out32 = run_sampler(spec, analytic, x32, sampler_sigmas(spec, sdxl(), 10), {}, {});
  const auto expected = ddim_closed_form(x_init, timesteps, 0.0, noises);
  const double err32 = max_abs(out32, expected) / expected.abs().max().item<double>();
  EXPECT_LE(err32, 2e-5);
  std::cout << "[measured] ddim float32 (table sigmas) vs float64 closed form norm rel " << err32 << "\n";
}

TEST(Ddim, EtaZeroIsEulerAndEndsOnX0AtSigmaZero) {
  const auto sigmas = fixture().load("sigmas").to(at::kDouble);  // karras_10 with a trailing 0
  const auto x = fixture().load("x_init").to(at::kDouble);
  const auto ddim = sample_ddim(analytic, x, sigmas, {}, {}, 0.0);
  const auto euler = sample_euler(analytic, x, sigmas);
  EXPECT_LE(max_abs(ddim, euler), 1e-12 * euler.abs().max().item<double>());
  EXPECT_THROW(sample_ddim(analytic, x, sigmas, {}, {}, 1.5), ls::Error);
  EXPECT_THROW(sample_ddim(analytic, x, sigmas, {}, {}, 0.5), ls::Error);  // eta > 0 needs noise
}

// ---- Names ----

TEST(SamplerNames, A1111AndKDiffusionNamesResolve) {
  const std::map<std::string, std::pair<SamplerKind, ScheduleKind>> cases = {
      {"Euler", {SamplerKind::kEuler, ScheduleKind::kUniform}},
      {"euler a", {SamplerKind::kEulerAncestral, ScheduleKind::kUniform}},
      {"EULER_ANCESTRAL", {SamplerKind::kEulerAncestral, ScheduleKind::kUniform}},
      {"k_euler_a", {SamplerKind::kEulerAncestral, ScheduleKind::kUniform}},
      {"Heun", {SamplerKind::kHeun, ScheduleKind::kUniform}},
      {"DPM++ 2M", {SamplerKind::kDpmpp2m, ScheduleKind::kKarras}},
      {"DPM++ 2M Karras", {SamplerKind::kDpmpp2m, ScheduleKind::kKarras}},
      {" dpm++ 2m karras ", {SamplerKind::kDpmpp2m, ScheduleKind::kKarras}},
      {"dpmpp_2m", {SamplerKind::kDpmpp2m, ScheduleKind::kKarras}},
      {"k_dpmpp_2m_ka", {SamplerKind::kDpmpp2m, ScheduleKind::kKarras}},
      {"Euler SGM Uniform", {SamplerKind::kEuler, ScheduleKind::kSgmUniform}},
      {"DPM++ 2M SDE Heun Exponential", {SamplerKind::kDpmpp2mSde, ScheduleKind::kExponential}},
      {"DPM++ 2M SDE Karras", {SamplerKind::kDpmpp2mSde, ScheduleKind::kKarras}},
      {"DPM++ 3M SDE", {SamplerKind::kDpmpp3mSde, ScheduleKind::kExponential}},
      {"LMS Karras", {SamplerKind::kLms, ScheduleKind::kKarras}},
      {"DPM2 a", {SamplerKind::kDpm2Ancestral, ScheduleKind::kKarras}},
      {"DDIM", {SamplerKind::kDdim, ScheduleKind::kAutomatic}},
      {"ddim", {SamplerKind::kDdim, ScheduleKind::kAutomatic}},
  };
  for (const auto& [name, expected] : cases) {
    const auto spec = parse_sampler(name);
    EXPECT_EQ(spec.kind, expected.first) << name;
    EXPECT_EQ(spec.schedule, expected.second) << name;
  }
  // A1111's separate schedule type; an "Automatic" one keeps the sampler's default.
  EXPECT_EQ(parse_sampler("DPM++ 2M", "Karras").schedule, ScheduleKind::kKarras);
  EXPECT_EQ(parse_sampler("Euler a", "Automatic").schedule, ScheduleKind::kUniform);
  EXPECT_EQ(parse_sampler("Euler a", "exponential").schedule, ScheduleKind::kExponential);
  EXPECT_EQ(parse_sampler("DPM++ 2M Karras", "Automatic").schedule, ScheduleKind::kKarras);
  EXPECT_EQ(parse_sampler("Euler", "Normal").schedule_label, "Normal");
  EXPECT_EQ(parse_sampler("dpmpp_2m_sde_heun").label, "DPM++ 2M SDE Heun");
  EXPECT_TRUE(parse_sampler("DPM++ 2M SDE Heun").heun_solver);
  EXPECT_TRUE(parse_sampler("DPM2").discard_penultimate_sigma);
  EXPECT_EQ(parse_sampler("Euler a").eta, 1.0);
  EXPECT_EQ(parse_sampler("DDIM").eta, 0.0);
  EXPECT_TRUE(uses_noise(parse_sampler("Euler a")));
  EXPECT_FALSE(uses_noise(parse_sampler("DPM++ 2M")));
  EXPECT_FALSE(uses_noise(parse_sampler("DDIM")));
}

TEST(SamplerNames, BadNamesListTheValidOnes) {
  const auto err = ls::test::error_of([] { parse_sampler("Eular a"); });
  EXPECT_NE(err.find("sampler \"Eular a\" is unknown"), std::string::npos) << err;
  EXPECT_NE(err.find("did you mean \"euler a\""), std::string::npos) << err;
  for (const auto& name : sampler_names()) EXPECT_NE(err.find("\"" + name + "\""), std::string::npos) << name;
  const auto bad_schedule = ls::test::error_of([] { parse_sampler("Euler", "Beta"); });
  EXPECT_NE(bad_schedule.find("\"SGM Uniform\""), std::string::npos) << bad_schedule;
  EXPECT_NE(ls::test::error_of([] { parse_sampler("DPM++ 2M Karras", "Exponential"); }).find("give one of them"),
            std::string::npos);
  EXPECT_NE(ls::test::error_of([] { parse_sampler("DDIM", "Karras"); }).find("own timestep spacing"),
            std::string::npos);
  EXPECT_EQ(sampler_names().size(), 13u);
}

// Nothing is tied to float32: x in bfloat16 with float32 sigmas runs in bfloat16 and lands near the
// float32 result (bfloat16 keeps 8 significant bits).
TEST(Samplers, RunInTheDtypeOfX) {
  const auto& f = fixture();
  for (const std::string name : {"euler_ancestral", "dpmpp_2m", "dpmpp_3m_sde"}) {
    int64_t k = 0;
    const auto noise = [&](double, double) { return f.load("noise_" + std::to_string(k++)).to(at::kBFloat16); };
    const auto model = [](const at::Tensor& x, const at::Tensor& sigma) {
      EXPECT_EQ(sigma.scalar_type(), at::kBFloat16);
      return analytic(x, sigma);
    };
    const auto x = f.load("x_init").to(at::kBFloat16);
    const auto out = run_sampler(parse_sampler(name), model, x, f.load("sigmas"), noise);
    EXPECT_EQ(out.scalar_type(), at::kBFloat16);
    const auto ref = f.load(name + "/out");
    EXPECT_LE(max_abs(out, ref), 3e-2 * ref.abs().max().item<double>()) << name;
  }
}

TEST(Samplers, BadInputsThrow) {
  const auto x = at::zeros({1, 4, 2, 2});
  EXPECT_THROW(sample_euler(analytic, x, at::tensor({1.0f, 2.0f, 0.0f})), ls::Error);  // increasing
  EXPECT_THROW(sample_euler(analytic, x, at::tensor({1.0f, -1.0f})), ls::Error);
  EXPECT_THROW(sample_euler(analytic, x, at::zeros({2, 2})), ls::Error);
  EXPECT_THROW(sample_euler_ancestral(analytic, x, at::tensor({1.0f, 0.5f, 0.0f}), {}), ls::Error);  // no noise
  const auto wrong_shape = [](const at::Tensor& x, const at::Tensor&) { return x.flatten(); };
  EXPECT_THROW(sample_euler(wrong_shape, x, at::tensor({1.0f, 0.0f})), ls::Error);
  // A single sigma is zero steps: x comes back unchanged.
  EXPECT_TRUE(sample_dpmpp_2m(analytic, x + 1, at::tensor({1.0f})).equal(x + 1));
}

}  // namespace samplers_test
