#include "support.h"

#include "core/error.h"

#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

namespace ls::test {

::testing::AssertionResult bit_equal(const at::Tensor& actual, const at::Tensor& expected) {
  if (actual.sizes() != expected.sizes() || actual.scalar_type() != expected.scalar_type()) {
    return ::testing::AssertionFailure() << "got " << actual.sizes() << " " << actual.scalar_type() << ", expected "
                                         << expected.sizes() << " " << expected.scalar_type();
  }
  if (at::equal(actual, expected)) return ::testing::AssertionSuccess();
  const auto diff = (actual.to(at::kDouble) - expected.to(at::kDouble)).abs();
  return ::testing::AssertionFailure() << (diff > 0).sum().item<int64_t>() << " elements differ, max abs "
                                       << diff.max().item<double>();
}

::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected,
                                     double rtol, double atol) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " != expected " << expected.sizes();
  }
  auto a = actual.detach().to(torch::kCPU, torch::kDouble);
  auto e = expected.detach().to(torch::kCPU, torch::kDouble);
  auto diff = (a - e).abs();
  auto excess = diff - (atol + rtol * e.abs());
  if (a.isnan().any().item<bool>() != e.isnan().any().item<bool>()) {
    return ::testing::AssertionFailure() << "NaN mismatch";
  }
  auto worst = excess.flatten().argmax().item<int64_t>();
  double worst_excess = excess.flatten()[worst].item<double>();
  if (worst_excess <= 0) return ::testing::AssertionSuccess();
  std::ostringstream msg;
  msg << "max abs diff " << diff.max().item<double>() << " (rtol " << rtol << ", atol " << atol
      << "); worst at flat index " << worst << ": got " << a.flatten()[worst].item<double>()
      << ", expected " << e.flatten()[worst].item<double>();
  return ::testing::AssertionFailure() << msg.str();
}

double norm_rel_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  auto a = actual.detach().to(torch::kCPU, torch::kDouble);
  auto e = expected.detach().to(torch::kCPU, torch::kDouble);
  return ((a - e).abs().max() / e.abs().max()).item<double>();
}

std::vector<FixtureKey> read_fixture_keys(const std::string& file, const std::string& prefix) {
  std::string path = std::string(kFixturesDir) + "/keys/" + file;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<FixtureKey> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.compare(0, prefix.size(), prefix) != 0) continue;
    auto tab = line.find('\t');
    auto shape_end = line.find('\t', tab + 1);
    FixtureKey key{line.substr(prefix.size(), tab - prefix.size()), {}};
    std::string digits;
    for (char c : line.substr(tab + 1, shape_end - tab - 1)) {
      if (std::isdigit(static_cast<unsigned char>(c))) {
        digits += c;
      } else if (!digits.empty()) {
        key.shape.push_back(std::stoll(digits));
        digits.clear();
      }
    }
    out.push_back(std::move(key));
  }
  return out;
}

std::map<std::string, std::vector<int64_t>> fixture_key_shapes(const std::string& file, const std::string& prefix) {
  std::map<std::string, std::vector<int64_t>> out;
  for (auto& k : read_fixture_keys(file, prefix)) out[k.name] = k.shape;
  return out;
}

std::map<std::string, std::vector<int64_t>> read_key_shapes(const std::filesystem::path& path) {
  std::map<std::string, std::vector<int64_t>> out;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  const std::regex line_re(R"(^(\S+)(?: \S+)? \[([0-9, ]*)\]$)");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!std::regex_match(line, m, line_re)) continue;
    std::vector<int64_t> shape;
    std::stringstream dims(m[2].str());
    for (std::string d; std::getline(dims, d, ',');) shape.push_back(std::stoll(d));
    out[m[1]] = shape;
  }
  return out;
}

TempDir::TempDir() {
  std::random_device rd;  // only names the folder; never feeds a computation
  path_ = std::filesystem::temp_directory_path() /
          ("ls_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int spawn(std::vector<std::string> argv, const std::string& log) {
  std::fflush(stdout);  // or the child inherits the buffer and prints it again
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("OMP_NUM_THREADS", "1", 1);
    std::vector<char*> p;
    for (auto& s : argv) p.push_back(s.data());
    p.push_back(nullptr);
    if (!freopen(log.c_str(), "a", stdout) || !freopen(log.c_str(), "a", stderr)) _exit(126);
    execv(p[0], p.data());
    _exit(127);
  }
  return pid;
}

CommandResult run_lorastudio(const std::string& args) {
  CommandResult result;
  std::string cmd = std::string(kLorastudioExe) + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) result.out.append(buf.data(), n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

::testing::AssertionResult gradcheck(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                     const torch::Tensor& x0, double eps, double tol) {
  auto x = x0.detach().to(torch::kDouble).clone().requires_grad_(true);
  auto y = f(x);
  auto w = torch::randn(y.sizes(), torch::TensorOptions().dtype(torch::kDouble));
  auto grad = torch::autograd::grad({(y * w).sum()}, {x})[0];
  torch::NoGradGuard no_grad;
  auto flat = x.detach().clone().flatten();
  auto gflat = grad.flatten();
  for (int64_t i = 0; i < flat.numel(); ++i) {
    auto xp = flat.clone(), xm = flat.clone();
    xp[i] += eps;
    xm[i] -= eps;
    double fp = (f(xp.view(x.sizes())) * w).sum().item<double>();
    double fm = (f(xm.view(x.sizes())) * w).sum().item<double>();
    double numeric = (fp - fm) / (2 * eps);
    double analytic = gflat[i].item<double>();
    if (std::abs(numeric - analytic) > tol * std::max(1.0, std::abs(numeric))) {
      return ::testing::AssertionFailure() << "gradient mismatch at " << i << ": numeric " << numeric
                                           << ", autograd " << analytic;
    }
  }
  return ::testing::AssertionSuccess();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ls::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace ls::test
