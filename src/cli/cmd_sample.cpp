// `lorastudio sample`: SDXL txt2img with LoRAs; every PNG carries A1111's `parameters` text, and
// `--from-png IMAGE` renders the image such a text describes again (bit-exact on the same device).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "a1111/request_params.h"
#include "cli/commands.h"
#include "cli/request_flags.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/line_log.h"
#include "core/key_table.h"
#include "core/progress.h"
#include "core/runtime.h"
#include "io/png_text.h"
#include "lora/kohya_format.h"
#include "sample/pipeline.h"

namespace fs = std::filesystem;

namespace ls::cli {

namespace {

struct SampleOptions {
  std::string model, model_config, tokenizer, vae, from_png, out = "outputs", device = "cpu", dtype = "fp32";
  std::string prediction = "auto";
  sample::ImageRequest request;
  std::map<std::string, std::string> fields;  // request field name -> text, as given
  std::vector<std::string> loras, lora_dirs;
  int64_t batch = 1;
  bool quiet = false, no_paths = false;
};

/// A1111's -1: a fresh seed in [0, 2^32) for every run (the one place lorastudio wants chance).
int64_t random_seed() {
  const auto ns = std::chrono::high_resolution_clock::now().time_since_epoch().count();
  return static_cast<int64_t>((static_cast<uint64_t>(ns) * 6364136223846793005ULL ^ static_cast<uint64_t>(getpid())) >> 32);
}

std::vector<sample::LoraSpec> lora_specs(const std::vector<std::string>& args) {
  std::vector<sample::LoraSpec> out;
  for (const auto& arg : args) {
    const auto [path, strength] = lora::parse_lora_arg(arg);
    out.push_back({path, strength});
  }
  return out;
}

/// The request a PNG's parameters describe, with the options given on this command line on top.
sample::ImageRequest request_from_png(SampleOptions& o, const CLI::App& cmd) {
  const auto texts = io::read_png_text_file(o.from_png);
  const auto it = texts.find("parameters");
  LS_CHECK(it != texts.end(), o.from_png, ": no `parameters` text in this PNG; only images written by lorastudio, ",
           "A1111 or tools that keep its text can be re-rendered");
  const auto params = a1111::parse_infotext(it->second, o.from_png);
  if (o.model.empty()) {
    LS_CHECK(!params.model_path.empty() && fs::exists(params.model_path), o.from_png, ": the model ",
             params.model.empty() ? std::string("(not named)") : "'" + params.model + "'",
             params.model_path.empty() ? "" : " at " + params.model_path, " is not here; pass --model FILE");
    o.model = params.model_path;
    a1111::FileHashCache hashes(a1111::user_cache_dir());
    LS_CHECK(params.model_hash.empty() || a1111::model_hash(o.model, hashes) == params.model_hash, o.model,
             ": its hash is not the image's Model hash ", params.model_hash,
             " (the file changed); pass --model FILE to render with it anyway");
  }
  // The image's separate VAE, unless --vae names one: found by its "VAE path", checked by its hash.
  if (o.vae.empty() && params.extra.count(a1111::kVaeKey)) {
    const auto path = params.extra.find(a1111::kVaePathKey);
    LS_CHECK(path != params.extra.end() && fs::exists(path->second), o.from_png, ": the VAE '",
             params.extra.at(a1111::kVaeKey), "'", path == params.extra.end() ? "" : " at " + path->second,
             " is not here; pass --vae FILE");
    o.vae = path->second;
    a1111::FileHashCache hashes(a1111::user_cache_dir());
    const auto hash = params.extra.find(a1111::kVaeHashKey);
    LS_CHECK(hash == params.extra.end() || a1111::vae_hash(o.vae, hashes) == hash->second, o.vae,
             ": its hash is not the image's VAE hash ", hash == params.extra.end() ? "" : hash->second,
             " (the file changed); pass --vae FILE to render with it anyway");
  }
  // The prediction the image was sampled with, unless --prediction is given; an image without one
  // (epsilon, or another tool's) leaves it to the model.
  if (cmd.count("--prediction") == 0) {
    const models::ModelPrediction p = a1111::prediction_of(params);
    if (p.v || p.zero_terminal_snr) o.prediction = models::prediction_name(p);
  }
  std::vector<std::string> dirs = o.lora_dirs;
  dirs.push_back(fs::path(o.from_png).parent_path().string());
  sample::ImageRequest r = a1111::request_from_params(params, dirs, o.from_png);
  for (const sample::RequestField& f : sample::request_fields()) {
    if (cmd.count("--" + f.key.name) == 0) continue;
    copy_field(f, o.request, r);
    // A sampler brings its own schedule: o.request holds the default unless a schedule is given too.
    if (const sample::RequestField* other = f.resets.empty() ? nullptr : sample::find_request_field(f.resets))
      copy_field(*other, o.request, r);
  }
  if (cmd.count("--lora") > 0) r.loras = lora_specs(o.loras);  // replaces the stored ones (e.g. another epoch)
  return r;
}

fs::path output_path(const SampleOptions& o, int64_t seed, int64_t count) {
  const fs::path out(o.out);
  if (out.extension() == ".png" && count == 1) return out;
  // A1111's naming: a running number, then the seed.
  int64_t next = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(out, ec)) {
    const std::string name = entry.path().filename().string();
    int64_t n = 0;
    if (std::sscanf(name.c_str(), "%lld-", reinterpret_cast<long long*>(&n)) == 1) next = std::max(next, n + 1);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%05lld-%lld.png", static_cast<long long>(next),
                static_cast<long long>(seed));
  return out / buf;
}

void run_sample(SampleOptions& o, const CLI::App& cmd) {
  core::init_threads();
  for (const sample::RequestField& f : sample::request_fields()) {
    const std::string flag = "--" + f.key.name;
    if (cmd.count(flag) > 0) f.key.set(o.request, core::text_value(o.fields[f.key.name]), flag);
  }
  sample::ImageRequest request;
  if (!o.from_png.empty()) {
    request = request_from_png(o, cmd);
  } else {
    request = o.request;
    request.loras = lora_specs(o.loras);
  }
  LS_CHECK(!o.model.empty(), "sample: no model; pass --model PATH (an SDXL .safetensors checkpoint or a diffusers folder)");
  LS_CHECK(o.batch >= 1, "sample: --batch must be at least 1");
  if (request.seed < 0) request.seed = random_seed();

  sample::ModelSource source{o.model, o.model_config, o.tokenizer, o.vae, o.prediction, core::parse_device(o.device),
                             core::parse_dtype(o.dtype)};
  models::check_prediction_choice(o.prediction);  // a misspelt --prediction fails before the load
  sample::validate_request(request);
  sample::Pipeline pipeline(source);
  a1111::FileHashCache hashes(a1111::user_cache_dir());

  const fs::path out(o.out);
  const fs::path dir = (out.extension() == ".png" && o.batch == 1) ? out.parent_path() : out;
  if (!dir.empty()) fs::create_directories(dir);
  core::LineLog log((dir.empty() ? fs::path(".") : dir) / "sample-log.jsonl");
  for (int64_t i = 0; i < o.batch; ++i) {
    sample::ImageRequest r = request;
    r.seed = request.seed + i;  // A1111: the images of a batch take consecutive seeds
    const double start = core::monotonic_seconds();
    core::Progress progress("image " + std::to_string(i + 1) + "/" + std::to_string(o.batch), r.steps, "step", !o.quiet);
    const auto image = pipeline.generate(r, [&](int64_t, int64_t) { progress.advance(); });
    progress.finish();
    a1111::GenerationParams params = a1111::generation_params(r, o.model, hashes, !o.no_paths, o.vae);
    a1111::add_prediction(params, pipeline.prediction());
    const std::string infotext = a1111::format_infotext(params);
    const fs::path path = output_path(o, r.seed, o.batch);
    io::write_png_with_text(path.string(), image, {{"parameters", infotext}});
    const double seconds = core::monotonic_seconds() - start;
    log.append(nlohmann::json{{"event", "image"}, {"path", path.string()}, {"seed", r.seed}, {"seconds", seconds},
                              {"parameters", infotext}}.dump());
    std::printf("%s (seed %lld, %.1f s)\n", path.string().c_str(), static_cast<long long>(r.seed), seconds);
    std::fflush(stdout);
  }
}

}  // namespace

void register_sample(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  o->request.seed = -1;  // A1111's default: a random seed (set before --seed captures it for --help)
  CLI::App* cmd = app.add_subcommand("sample", "Generate images with an SDXL checkpoint and LoRAs (A1111 parameters in every PNG)");
  cmd->add_option("--model", o->model, "SDXL checkpoint (.safetensors) or diffusers folder");
  cmd->add_option("--vae", o->vae, "Separate VAE (.safetensors in ldm or diffusers names, or a diffusers VAE folder)")
      ->check(CLI::ExistingPath);
  cmd->add_option("--model_config,--model-config", o->model_config, "Architecture JSON for models without lorastudio metadata");
  cmd->add_option("--prediction", o->prediction,
                  "What the model predicts: auto (its v_pred / ztsnr markers or modelspec), epsilon, v, v_zsnr "
                  "(v on the zero-terminal-SNR schedule)")
      ->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer,
                  "CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz) or tokenizer folder (default: beside the model, "
                  "a diffusers folder's tokenizer/, or $LORASTUDIO_TOKENIZER)");
  add_request_flags(*cmd, o->request, o->fields);
  cmd->add_option("--batch", o->batch, "Images, with consecutive seeds")->capture_default_str();
  cmd->add_option("--lora", o->loras, "LoRA file, optionally :strength (FILE:0.8); repeatable");
  cmd->add_option("--lora-dir", o->lora_dirs, "Folders to find LoRAs named in a --from-png image");
  cmd->add_option("-o,--out", o->out, "Output folder, or FILE.png for one image")->capture_default_str();
  cmd->add_option("--from-png", o->from_png, "Render the image described by this PNG's parameters again");
  cmd->add_option("--device", o->device, "cpu, cuda, cuda:1, ...")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "fp32, fp16, bf16")->capture_default_str();
  cmd->add_flag("--no-paths", o->no_paths,
                 "Leave the model and LoRA file paths out of the PNG text (re-render with --model and --lora-dir)");
  cmd->add_flag("-q,--quiet", o->quiet, "No progress bar");
  cmd->callback([o, cmd] { run_sample(*o, *cmd); });
}

}  // namespace ls::cli
