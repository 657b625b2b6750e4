// The tiny diffusers folder's weights; see diffusers_fixture.h.
#include "models/diffusers_fixture.h"

#include <ATen/CPUGeneratorImpl.h>

#include <fstream>
#include <sstream>

#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace ls::test {

namespace {

int64_t diffusers_part_seed(const std::string& part) {
  if (part == "unet") return 1;
  if (part == "vae") return 2;
  if (part == "text_encoder") return 3;
  return 4;  // text_encoder_2
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> diffusers_fixture_keys(const std::string& part) {
  std::ifstream in(diffusers_fixture_dir() / "keys" / ("tiny_" + part + ".txt"));
  EXPECT_TRUE(in.good()) << "no key list for " << part;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  std::string line;
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    std::vector<int64_t> shape;
    std::string dims = line.substr(space + 1);
    for (char& ch : dims)
      if (ch == '[' || ch == ']' || ch == ',') ch = ' ';
    std::istringstream s(dims);
    for (int64_t d; s >> d;) shape.push_back(d);
    out.emplace_back(line.substr(0, space), shape);
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> diffusers_fixture_weights(const std::string& part) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  const int64_t seed = diffusers_part_seed(part);
  int64_t i = 0;
  for (const auto& [name, shape] : diffusers_fixture_keys(part)) {
    auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed * 100000 + i++));
    const torch::Tensor u = torch::rand(shape, gen, torch::kFloat32);
    double s = 0.1, b = 0.0;
    if (shape.size() >= 2) {
      int64_t numel = 1;
      for (int64_t d : shape) numel *= d;
      s = std::sqrt(3.0 / (static_cast<double>(numel) / static_cast<double>(shape[0])));
    } else if (name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0) {
      b = 1.0;
    }
    out.emplace_back(name, (u * 2 - 1) * s + b);
  }
  return out;
}

void write_diffusers_fixture_folder(const fs::path& dst, const std::string& variant) {
  const fs::path src = diffusers_fixture_dir() / "tiny-sdxl";
  fs::copy(src, dst, fs::copy_options::recursive);
  for (const char* part : {"unet", "vae", "text_encoder", "text_encoder_2"}) {
    const std::string p(part);
    const std::string stem = p == "unet" || p == "vae" ? "diffusion_pytorch_model" : "model";
    std::optional<c10::ScalarType> dtype;
    if (variant == ".fp16") dtype = torch::kHalf;
    io::save_safetensors(dst / p / (stem + variant + ".safetensors"), diffusers_fixture_weights(p), {{"format", "pt"}},
                         dtype);
  }
}

}  // namespace ls::test
