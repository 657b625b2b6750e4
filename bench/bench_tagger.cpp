// WD14 tagger throughput (images/s through the network at the model's input size, CPU, fp32),
// for the five architectures: the tiny fixture models at batch 8 and, with --real, the real-size
// models (random weights, 448 px) at batch 1; beside timm on the same torch in the same run when
// a python with timm is given (--python PY, default: the torch venv's), with the ratio
// lorastudio / timm. One figure per line.
//   bench_tagger [--real] [--seconds S] [--python PY] [--fixtures DIR]   (run from the repository root)
#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include <torch/torch.h>

#include "bench_common.h"
#include "caption/tagger_config.h"
#include "caption/tagger_model.h"

namespace {

namespace fs = std::filesystem;
const char* kNames[] = {"vit", "vit_large", "swinv2", "convnext", "eva02"};

double rate(ls::caption::TaggerNet& net, int64_t size, int64_t batch, double budget) {
  auto x = torch::rand({batch, 3, size, size}) * 2 - 1;
  torch::InferenceMode inference;
  net.forward(x);  // warm-up
  int64_t n = 0;
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    net.forward(x);
    n += batch;
    double s = ls::bench::seconds_since(start);
    if (s >= budget) return static_cast<double>(n) / s;
  }
}

// The hub configs of the real taggers: the fixture's architecture with the real sizes.
std::string real_config(const std::string& name) {
  static const std::map<std::string, std::string> args = {
      {"vit", R"("vit_base_patch16_224", "model_args": {"img_size": 448, "class_token": false, "global_pool": "avg", "fc_norm": false, "act_layer": "gelu_tanh"})"},
      {"vit_large", R"("vit_large_patch16_224", "model_args": {"img_size": 448, "class_token": false, "global_pool": "avg", "fc_norm": false, "act_layer": "gelu_tanh"})"},
      {"swinv2", R"("swinv2_base_window8_256", "model_args": {"img_size": 448, "window_size": 14, "act_layer": "gelu"})"},
      {"convnext", R"("convnext_base", "model_args": {"act_layer": "gelu"})"},
      {"eva02", R"("eva02_large_patch14_448", "model_args": {"img_size": 448})"},
  };
  return R"({"architecture": )" + args.at(name) +
         R"(, "num_classes": 10861, "pretrained_cfg": {"input_size": [3, 448, 448]}})";
}

}  // namespace

// timm's figures for one architecture, printed with the ratios to ours; false when it cannot run.
bool run_timm(const std::string& python, const fs::path& fixtures, const char* name, double budget, bool real,
              const std::map<std::string, double>& ours) {
  const std::string cmd = python + " bench/bench_tagger_timm.py " + fixtures.string() + " " +
                          std::to_string(budget) + " " + name + (real ? " --real" : "");
  return ls::bench::reference_figures(cmd, [&](const std::string& key, const std::string& value) {
           std::printf("%s %s\n", key.c_str(), value.c_str());  // tagger_<name>_<size>_timm_img_per_s
           const double timm = std::stod(value);
           const auto base = key.substr(0, key.find("_timm_img_per_s"));
           if (ours.count(base) && timm > 0) std::printf("%s_ratio_vs_timm %.2f\n", base.c_str(), ours.at(base) / timm);
         }) > 0;
}

int bench(const ls::bench::Args& args) {
  const bool real = args.has("real");
  const double budget = std::stod(args.text("seconds", "3"));
  const fs::path fixtures = args.text("fixtures", "tests/fixtures/tagger");
  const std::string python = ls::bench::reference_python(args.text("python", ""));
  bool have_python = !python.empty();
  if (!have_python) std::printf("tagger_timm skipped (no python with timm; pass --python)\n");
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  torch::manual_seed(0);
  std::map<std::string, double> ours;
  for (const char* name : kNames) {
    auto model = ls::caption::load_tagger_model(fixtures / name, torch::kCPU, torch::kFloat);
    double r = rate(*model.net, model.config.input_size, 8, budget);
    ours[std::string("tagger_") + name + "_tiny"] = r;
    std::printf("tagger_%s_tiny_img_per_s %.2f\n", name, r);
    std::fflush(stdout);
    if (real) {
      torch::manual_seed(0);
      auto config = ls::caption::parse_tagger_config(real_config(name), name);
      auto net = ls::caption::make_tagger_net(config);  // random weights
      net->eval();
      r = rate(*net, 448, 1, budget);
      ours[std::string("tagger_") + name + "_448"] = r;
      std::printf("tagger_%s_448_img_per_s %.3f\n", name, r);
      std::fflush(stdout);
    }
    // The reference right after, on the same machine state, torch and threads.
    if (have_python && !run_timm(python, fixtures, name, budget, real, ours)) {
      std::printf("tagger_timm skipped (%s could not run timm)\n", python.c_str());
      have_python = false;
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  return ls::bench::run_main([&] { return bench(ls::bench::Args(argc, argv, {"seconds", "python", "fixtures"}, {"real"})); });
}
