// The tiny diffusers SDXL folder of tests/fixtures/diffusers (README.md there): its JSON files are
// committed, its weights are drawn here by the fixture's rule, so the folder matches the one
// diffusers ran to make golden.safetensors without committing ~28 MB of weights.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "support/support.h"

namespace ls::test {

inline std::filesystem::path diffusers_fixture_dir() {
  return std::filesystem::path(kSourceDir) / "tests" / "fixtures" / "diffusers";
}

/// "name [d0, d1, ...]" lines in the file's order (the order the weight rule numbers tensors).
std::vector<std::pair<std::string, std::vector<int64_t>>> diffusers_fixture_keys(const std::string& part);

/// The weight rule of make_fixtures.py (fill()): tensor i of the part, u = torch.rand(shape) from a
/// CPU generator seeded part_seed * 100000 + i, (2u - 1) * s + b.
std::vector<std::pair<std::string, torch::Tensor>> diffusers_fixture_weights(const std::string& part);

/// Writes the tiny folder to dst (configs copied, weights drawn); variant "" or ".fp16" names the
/// weight files as diffusers' variants do (fp16 files hold the weights rounded to fp16).
void write_diffusers_fixture_folder(const std::filesystem::path& dst, const std::string& variant = "");

}  // namespace ls::test
