// `lorastudio dataset check|cache|make-synthetic`: inspect a dataset before training, fill the
// latent cache with a checkpoint's VAE, and write the synthetic dataset used by tests and the
// quickstart.
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cli/commands.h"
#include "cli/data_options.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/line_log.h"
#include "core/runtime.h"
#include "data/doctor.h"
#include "data/latent_cache.h"
#include "data/synthetic.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/model_source.h"

namespace ls::cli {
namespace {

struct CheckCommand {
  DataSourceOptions source;
  data::CheckOptions check;
  bool json = false;
  std::string output;
};

void run_check(CheckCommand& o, bool batch_size_given) {
  data::Findings findings;
  const data::DataConfig config = load_data_source(o.source, findings);
  if (batch_size_given) o.check.batch_size = o.source.folder.defaults.batch_size;
  o.check.show_progress = !o.json;
  const data::CheckReport report = data::check_dataset(config, findings, o.check);
  const std::string json = o.json || !o.output.empty() ? report_json(report).dump(2) + "\n" : std::string();
  const std::string text = o.json ? json : report_text(report);
  if (!o.output.empty()) core::write_file_atomic(o.output, json);
  std::cout << text << std::flush;
  LS_CHECK(report.ok(), report.source, ": ", data::count_findings(report.findings, data::Severity::kError),
           " problems would break training (listed above)");
}

struct CacheCommand {
  DataSourceOptions source;
  std::string model, config, vae, cache_dir, device = "cpu", dtype = "fp32";
  int vae_batch_size = 1;
  uint64_t seed = 0;
};

void run_cache(CacheCommand& o) {
  data::Findings findings;
  const data::DataConfig config = load_data_source(o.source, findings);
  data::require_latent_cacheable(config);
  const std::vector<data::DatasetIndex> datasets = data::index_datasets(config, findings);
  data::require_no_errors(findings, o.source.path);
  const c10::Device device = core::parse_device(o.device);
  const c10::ScalarType dtype = core::parse_dtype(o.dtype);
  const models::ModelFiles files{o.model, o.config, o.vae};
  const std::string vae_id = models::model_part_fingerprint(files, models::ModelPart::kVae);
  const std::string model_id = data::vae_cache_id(vae_id, core::dtype_name(dtype));  // "fp32" as train writes it
  auto model = models::load_sdxl_model(files, {false, false, true}, device, dtype);
  model.vae->eval();
  // kohya caches one sample of the latent distribution (unscaled); the trainer scales it.
  const data::ImageEncoder encode = [&](const torch::Tensor& pixels, const std::vector<uint64_t>& noise_ids) {
    torch::NoGradGuard no_grad;
    const models::VaeMoments moments = model.vae->encode(pixels.to(device, dtype));
    const torch::Tensor latents = models::sample_latent(moments, data::latent_noise(moments.mean, o.seed, noise_ids));
    models::require_finite_latents(latents, dtype);
    return latents;
  };
  const std::string dir = o.cache_dir.empty() ? data::default_cache_dir(o.source.path) : o.cache_dir;
  const data::LatentCache cache(dir + "/latents", model_id);
  const auto t0 = std::chrono::steady_clock::now();
  const data::CacheStats stats = cache.fill(datasets, encode, o.vae_batch_size);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The machine-readable record of this run, one JSON line appended per run.
  const nlohmann::json line{{"command", "dataset cache"}, {"source", o.source.path}, {"model", o.model},
                            {"vae_sha256", vae_id}, {"dtype", o.dtype}, {"device", o.device},
                            {"hits", stats.hits}, {"encoded", stats.encoded}, {"seconds", seconds},
                            {"time", static_cast<int64_t>(std::time(nullptr))}};
  core::LineLog(dir + "/cache_log.jsonl").append(line.dump());
  std::cout << "latent cache " << dir << "/latents: " << stats.hits << " cached, " << stats.encoded << " encoded in "
            << static_cast<int>(seconds + 0.5) << " s\n";
}

}  // namespace

void register_dataset(CLI::App& app) {
  CLI::App* dataset = app.add_subcommand("dataset", "Inspect, cache and generate training datasets");
  dataset->require_subcommand(1);

  auto check = std::make_shared<CheckCommand>();
  CLI::App* c = dataset->add_subcommand("check", "Report what would waste or break training; non-zero exit on errors");
  add_data_source_options(*c, check->source);
  c->add_option("--tokenizer", check->check.tokenizer,
                "CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz, vocab.json or a tokenizer folder) to count caption tokens")
      ->check(CLI::ExistingPath);
  c->add_option("--near-duplicate-distance", check->check.near_duplicate_distance,
                "Perceptual-hash distance (of 64 bits) reported as near duplicates")
      ->capture_default_str();
  c->add_flag("--json", check->json, "Print the report as JSON");
  c->add_option("--report", check->output, "Also write the JSON report to this file");
  c->callback([check, c] { run_check(*check, c->get_option("--batch-size")->count() > 0); });

  auto cache = std::make_shared<CacheCommand>();
  CLI::App* k = dataset->add_subcommand("cache", "Encode missing VAE latents into the cache (hits are skipped)");
  add_data_source_options(*k, cache->source);
  k->add_option("--model", cache->model, "SDXL checkpoint or diffusers folder whose VAE encodes")->required()->check(CLI::ExistingPath);
  k->add_option("--vae", cache->vae, "Separate VAE file or folder that encodes instead of the model's")->check(CLI::ExistingPath);
  k->add_option("--config", cache->config, "Architecture JSON for test models")->check(CLI::ExistingFile);
  k->add_option("--cache-dir", cache->cache_dir, "Cache folder (default: .lorastudio-cache beside the dataset)");
  k->add_option("--vae-batch-size", cache->vae_batch_size)->capture_default_str();
  k->add_option("--device", cache->device)->capture_default_str();
  k->add_option("--dtype", cache->dtype)->capture_default_str();
  k->add_option("--seed", cache->seed)->capture_default_str();
  k->callback([cache] { run_cache(*cache); });

  auto synth = std::make_shared<data::SyntheticOptions>();
  auto out = std::make_shared<std::string>();
  CLI::App* s = dataset->add_subcommand("make-synthetic", "Write a synthetic kohya dataset (shapes and colours, captions)");
  s->add_option("out", *out, "Output folder")->required();
  s->add_option("--images", synth->images)->capture_default_str();
  s->add_option("--reg-images", synth->reg_images)->capture_default_str();
  s->add_option("--repeats", synth->repeats)->capture_default_str();
  s->add_option("--class-tokens", synth->class_tokens)->capture_default_str();
  s->add_option("--min-side", synth->min_side)->capture_default_str();
  s->add_option("--max-side", synth->max_side)->capture_default_str();
  s->add_option("--format", synth->format, "png, jpg or webp")->capture_default_str();
  s->add_option("--resolution", synth->resolution, "Resolution written into dataset.toml")->capture_default_str();
  s->add_option("--batch-size", synth->batch_size, "Batch size written into dataset.toml")->capture_default_str();
  s->add_option("--seed", synth->seed)->capture_default_str();
  s->callback([synth, out] {
    const data::SyntheticDataset ds = data::make_synthetic_dataset(*out, *synth);
    std::cout << "wrote " << ds.images.size() << " images; config " << ds.config_toml << "\n";
  });
}

}  // namespace ls::cli
