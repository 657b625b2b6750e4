// Shared test helpers: tolerance checks that report where numbers differ, temp folders,
// running the lorastudio executable, and finite-difference gradient checks.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <vector>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "test_paths.h"

namespace ls::test {

/// |a - b| <= atol + rtol |b| everywhere, with the worst element in the failure message.
::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected,
                                     double rtol, double atol);
/// Same shape, dtype and every bit; the failure says how many elements differ and by how much.
::testing::AssertionResult bit_equal(const torch::Tensor& actual, const torch::Tensor& expected);
/// max |a - b| / max |b|
double norm_rel_error(const torch::Tensor& actual, const torch::Tensor& expected);

/// One line of a fixtures/keys/ list: "<key>\t[d0, d1, ...]\t..." ('#' lines are comments).
struct FixtureKey {
  std::string name;
  std::vector<int64_t> shape;
};
/// Entries of fixtures/keys/<file> whose key starts with prefix, prefix removed, in file order.
std::vector<FixtureKey> read_fixture_keys(const std::string& file, const std::string& prefix = "");
/// The same as key -> shape.
std::map<std::string, std::vector<int64_t>> fixture_key_shapes(const std::string& file,
                                                               const std::string& prefix = "");
/// A key list of the repository's fixtures (tests/fixtures/<model>/keys/*.txt): one tensor a line,
/// "name [d0, d1, ...]" or "name DTYPE [d0,d1,...]" -> name -> shape; other lines are skipped.
/// A file that cannot be opened fails the calling test.
std::map<std::string, std::vector<int64_t>> read_key_shapes(const std::filesystem::path& path);

/// A fresh folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};
/// The ls::Error message of f(), or "" when it does not throw.
std::string error_of(const std::function<void()>& f);

/// Runs `lorastudio <args>` through the shell and captures its output.
CommandResult run_lorastudio(const std::string& args);

/// Starts argv (argv[0] = the executable) as a child process with OMP_NUM_THREADS=1, its output
/// appended to `log` (default: discarded); returns its pid for waitpid/kill.
int spawn(std::vector<std::string> argv, const std::string& log = "/dev/null");

/// Central finite differences of sum(f(x) * w) against autograd, for a random w; x is float64.
::testing::AssertionResult gradcheck(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                     const torch::Tensor& x, double eps = 1e-6, double tol = 1e-5);

}  // namespace ls::test
