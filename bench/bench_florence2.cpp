// Florence-2 seconds per caption on the CPU (fp32, one 768 x 768 image, <DETAILED_CAPTION>, beam
// search as captioning runs it: 3 beams, no-repeat 3-grams, a fixed budget of 64 new tokens), for
// the real-size base and large models with random weights; beside transformers' native
// Florence2ForConditionalGeneration on the same torch in the same run when a python with
// transformers is given (--python PY, default: the torch venv's), with the ratio
// transformers / lorastudio (above 1: lorastudio is faster). One figure per line.
//   bench_florence2 [--sizes base,large] [--repeats N] [--python PY]   (run from the repository root)
#include <cstdio>
#include <string>
#include <thread>

#include <torch/torch.h>

#include "bench_common.h"
#include "caption/florence2_config.h"
#include "caption/florence2_generate.h"
#include "caption/florence2_model.h"

namespace {

namespace fs = std::filesystem;

// The prompt's ids are the same arbitrary ones on both sides (the real vocabulary is not here):
// 13 tokens, <s> ... </s>, the length of "Describe in detail what is shown in the image.".
const std::vector<int64_t> kPromptIds = {0, 47, 7033, 11, 4617, 99, 16, 2343, 11, 5, 2274, 4, 2};

struct Figures {
  double seconds = 0;
  int64_t tokens = 0;
  double encode_seconds = 0;  // vision tower, projection and language encoder
};

Figures caption_seconds(ls::caption::Florence2NetImpl& net, int repeats) {
  auto pixels = torch::randn({1, 3, 768, 768});
  auto ids = torch::tensor(kPromptIds, torch::kInt64).unsqueeze(0);
  auto options = ls::caption::Florence2GenerateOptions::from(net.config().text);
  options.max_new_tokens = 64;
  torch::InferenceMode inference;
  std::vector<double> times, encode_times;
  Figures f;
  for (int r = 0; r <= repeats; ++r) {  // the first is the warm-up
    auto start = ls::bench::Clock::now();
    auto states = net.encode(pixels, ids);
    double encoded = ls::bench::seconds_since(start);
    auto out = ls::caption::florence2_generate(*net.language_model, states, options);
    double s = ls::bench::seconds_since(start);
    f.tokens = out.size(1) - 1;
    if (r > 0) times.push_back(s), encode_times.push_back(encoded);
  }
  f.seconds = ls::bench::median(times);
  f.encode_seconds = ls::bench::median(encode_times);
  return f;
}

// transformers' figure for one size ("florence2_<size>_transformers_s_per_caption value" and
// the tokens it generated); a negative time when it could not run.
Figures run_transformers(const std::string& python, const std::string& size, int repeats) {
  std::string ids;
  for (auto id : kPromptIds) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  std::string cmd = python + " bench/bench_florence2_transformers.py tests/fixtures/florence2/configs/" + size +
                    "-transformers.json " + std::to_string(repeats) + " " + ids + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  char line[512];
  Figures f{-1, 0};
  while (p && std::fgets(line, sizeof line, p)) {
    double seconds = 0;
    long long tokens = 0;
    if (std::sscanf(line, "seconds %lf tokens %lld", &seconds, &tokens) == 2) f = {seconds, tokens};
  }
  if (p) pclose(p);
  return f;
}

int bench(const ls::bench::Args& args) {
  const int repeats = std::stoi(args.text("repeats", "2"));
  const std::string sizes = args.text("sizes", "base,large");
  const std::string python = ls::bench::reference_python(args.text("python", ""));
  bool have_python = !python.empty();
  if (!have_python) std::printf("florence2_transformers skipped (no python with transformers; pass --python)\n");
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  for (const std::string size : {"base", "large"}) {
    if (sizes.find(size) == std::string::npos) continue;
    torch::manual_seed(0);
    auto config = ls::caption::read_florence2_config("tests/fixtures/florence2/configs/" + size + "-transformers.json");
    Figures ours;
    {
      ls::caption::Florence2Net net(config);  // random weights
      net->eval();
      ours = caption_seconds(*net, repeats);
    }
    ls::bench::print_figure("florence2_" + size + "_s_per_caption", ours.seconds, 3);
    ls::bench::print_figure("florence2_" + size + "_encode_s", ours.encode_seconds, 3);
    ls::bench::print_figure("florence2_" + size + "_tokens", static_cast<double>(ours.tokens), 0);
    // The reference right after, on the same machine state, torch and threads.
    if (!have_python) continue;
    Figures ref = run_transformers(python, size, repeats);
    if (ref.seconds < 0) {
      std::printf("florence2_transformers skipped (%s could not run transformers' Florence2)\n", python.c_str());
      have_python = false;
      continue;
    }
    ls::bench::print_figure("florence2_" + size + "_transformers_s_per_caption", ref.seconds, 3);
    ls::bench::print_figure("florence2_" + size + "_transformers_tokens", static_cast<double>(ref.tokens), 0);
    ls::bench::print_figure("florence2_" + size + "_speedup_vs_transformers", ref.seconds / ours.seconds, 2);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::bench::run_main([&] { return bench(ls::bench::Args(argc, argv, {"repeats", "python", "sizes"}, {})); });
}
