// Seconds per sampling step of SDXL txt2img: the CFG denoiser (UNet on the cond + uncond batch of
// 2) inside the Euler sampler, full-size UNet with random weights (numbers are not the point; the
// arithmetic is the same as with real ones); also the same without guidance (batch 1) as a ratio
// within the run, and optionally a whole image as `sample` makes it. One figure per line.
//   bench_sample_step              tiny config at 8x8, then full size on the CPU, float32, at a
//                                  64x64 latent (512x512 image), 3 steps each
//   bench_sample_step --tiny-only  the tiny config only
// Options (any of them skips the tiny figure; figure names then carry the device and dtype):
//   --device cpu|cuda[:N]  --dtype fp32|bf16|fp16 (UNet and text encoders, as `sample --dtype`)
//   --side N (latent side; 128 = 1024x1024)  --steps N (timed Euler steps per figure, 3)
//   --model sdxl|tiny (the architecture; tiny checks the code paths in seconds)
//   --image --tokenizer VOCAB  also one whole image through sample::Pipeline: prompt pair encoded,
//                          --image-steps N (20) of its default sampler (DPM++ 2M) with CFG 7 at
//                          (side*8)^2, VAE decode in float32 as the pipeline does; after a 2-step
//                          warm-up image. Then the text encoding and the VAE decode alone.
// On the CPU with the full-size UNet, the same CFG step through diffusers' UNet2DConditionModel on
// the same torch runs first, in a child process (bench_unet_diffusers.py; --python PY, default the
// torch venv's, when diffusers is installed there: scripts/make-diffusers-fixtures installs it;
// --no-reference skips it), then the ratio lorastudio / diffusers. Run from the repository root.
// e.g. bench_sample_step --device cuda --dtype bf16 --side 128 --image --tokenizer bpe_simple_vocab_16e6.txt.gz
// On CUDA the memory figures are the caching allocator's peaks over the figure, model included.
#include <cstdio>
#include <string>

#include <torch/torch.h>

#include "bench_common.h"
#include "core/runtime.h"
#include "models/sdxl_conditioner.h"
#include "sample/cfg_denoiser.h"
#include "sample/pipeline.h"
#include "sample/prompt_encoder.h"
#include "sample/samplers.h"
#include "text/clip_tokenizer.h"

namespace {

using ls::bench::print_figure;

struct Options {
  bool extended = false;  // any option but --tiny-only: device/dtype in the names, no tiny figure
  bool tiny_only = false;
  c10::Device device{c10::kCPU};
  c10::ScalarType dtype = c10::kFloat;
  bool tiny_model = false;
  int64_t side = 64, steps = 3;
  bool image = false;
  std::string tokenizer;
  int64_t image_steps = 20;
  bool reference = true;
  std::string python;
};

Options parse_options(int argc, char** argv) {
  const ls::bench::Args a(argc, argv,
                          {"device", "dtype", "side", "steps", "model", "tokenizer", "image-steps", "python"},
                          {"tiny-only", "image", "no-reference"});
  Options o;
  o.tiny_only = a.has("tiny-only");
  o.device = ls::core::parse_device(a.text("device", "cpu"));
  o.dtype = ls::core::parse_dtype(a.text("dtype", "fp32"));
  const std::string model = a.text("model", "sdxl");
  LS_CHECK(model == "sdxl" || model == "tiny", "bench: --model is sdxl or tiny, got '", model, "'");
  o.tiny_model = model == "tiny";
  o.side = a.integer("side", 64);
  o.steps = a.integer("steps", 3);
  o.image = a.has("image");
  o.tokenizer = a.text("tokenizer", "");
  LS_CHECK(!o.image || !o.tokenizer.empty(), "bench: --image needs --tokenizer (bpe_simple_vocab_16e6.txt.gz)");
  o.image_steps = a.integer("image-steps", 20);
  o.reference =
      !a.has("no-reference") && !o.tiny_only && !o.tiny_model && !o.device.is_cuda() && o.dtype == c10::kFloat;
  o.python = a.text("python", "");
  o.extended = a.any() && !(o.tiny_only && argc == 2) && !(argc == 2 && a.has("no-reference"));
  return o;
}

/// Mean seconds per step of `steps` Euler steps (after one warm-up step), the device idle at both
/// ends. Conditioning in the UNet's dtype, latents float32, as the pipeline passes them.
double seconds_per_step(ls::models::SdxlUnet unet, c10::Device device, int64_t side, double cfg, int64_t steps) {
  const auto& c = unet->config();
  const auto dtype = unet->parameters().front().scalar_type();
  const auto on = torch::TensorOptions().device(device);
  const auto conditioning = [&] {
    return ls::sample::UnetConditioning{torch::randn({1, 77, c.context_dim}, on).to(dtype),
                                        torch::randn({1, c.adm_in_channels}, on).to(dtype)};
  };
  const auto schedule = ls::models::NoiseSchedule::sdxl();
  const auto cond = conditioning();
  const auto uncond = conditioning();
  auto denoiser = ls::sample::cfg_denoiser(unet, schedule, cond, uncond, cfg);
  const auto spec = ls::sample::parse_sampler("Euler");
  const auto warm = ls::sample::sampler_sigmas(spec, schedule, 1).to(device);
  auto x = torch::randn({1, c.in_channels, side, side}, on);
  ls::sample::run_sampler(spec, denoiser, x * warm[0], warm, {}, {});
  const auto sigmas = ls::sample::sampler_sigmas(spec, schedule, steps).to(device);
  return ls::bench::timed(device, [&] { ls::sample::run_sampler(spec, denoiser, x * sigmas[0], sigmas, {}, {}); }) /
         static_cast<double>(steps);
}

/// Seconds per CFG step of diffusers' UNet at side x side (batch 2, float32, CPU), printed as the
/// script prints it; 0 when no python with diffusers could run it.
double reference_step(const Options& o) {
  const std::string python = ls::bench::reference_python(o.python);
  if (python.empty()) {
    std::printf("diffusers skipped (no python; pass --python)\n");
    return 0;
  }
  const std::string cmd = python + " bench/bench_unet_diffusers.py " + std::to_string(o.side) + " " +
                          std::to_string(o.steps);
  double seconds = 0;
  ls::bench::reference_figures(cmd, [&](const std::string& name, const std::string& value) {
    std::printf("%s %s\n", name.c_str(), value.c_str());
    if (name.find("_diffusers_s_per_step") != std::string::npos) seconds = std::stod(value);
  });
  if (seconds <= 0) std::printf("diffusers skipped (%s could not run bench/bench_unet_diffusers.py)\n", python.c_str());
  std::fflush(stdout);
  return seconds;
}

void print_ratio(const std::string& name, double ours, double reference) {
  if (reference > 0) print_figure(name + "_ratio_vs_diffusers", ours / reference, 3);
}

/// "_cuda" (any index) or "" for the CPU: the old names had no device.
std::string device_tag(c10::Device device) { return device.is_cuda() ? "_cuda" : ""; }

void print_gpu_peaks(const std::string& name, c10::Device device) {
  if (!device.is_cuda()) return;
  const ls::bench::GpuMemory m = ls::bench::gpu_memory(device);
  print_figure(name + "_peak_gpu_mb", m.peak_allocated_mb, 0);
  print_figure(name + "_peak_gpu_reserved_mb", m.peak_reserved_mb, 0);
}

/// The CFG step, the step without guidance and their ratio, at o.side.
void step_figures(const Options& o, ls::models::SdxlUnet unet, double reference) {
  const std::string size = ls::str_cat(o.side, "x", o.side);
  const std::string base = ls::str_cat("sample_step_", o.tiny_model ? "tiny_" : "", size, device_tag(o.device));
  const std::string dtype = ls::core::dtype_name(o.dtype);
  ls::bench::reset_gpu_peaks(o.device);
  const double with_cfg = seconds_per_step(unet, o.device, o.side, 7.0, o.steps);
  print_figure(base + "_cfg_" + dtype + "_s", with_cfg, 4);
  print_ratio(base + "_cfg_" + dtype, with_cfg, reference);
  print_gpu_peaks(base + "_cfg_" + dtype, o.device);
  const double without = seconds_per_step(unet, o.device, o.side, 1.0, o.steps);
  print_figure(base + "_nocfg_" + dtype + "_s", without, 4);
  print_figure(base + "_" + dtype + "_cfg_over_nocfg_ratio", with_cfg / without, 3);
}

/// One whole image through the real pipeline, then its text and VAE parts alone.
void image_figures(const Options& o, ls::models::SdxlModel model) {
  model.vae->to(torch::kFloat);  // as Pipeline(ModelSource) does: SDXL's VAE overflows in fp16
  for (const auto& part : ls::bench::parts_of(model)) part->eval();
  ls::sample::Pipeline pipeline(model, ls::text::ClipTokenizer::from_file(o.tokenizer), o.device);
  ls::sample::ImageRequest r;
  r.prompt = "a photo of a corgi wearing a red scarf, studio lighting, (masterpiece:1.2)";
  r.negative_prompt = "blurry, lowres";
  r.width = r.height = o.side * model.config.vae.downscale();
  r.steps = 2;
  pipeline.generate(r);  // warm-up: kernels chosen and memory pooled at every shape of the run
  r.steps = o.image_steps;
  const std::string px = ls::str_cat(r.width, "x", r.height);
  const std::string dtype = ls::core::dtype_name(o.dtype);
  const std::string name = ls::str_cat("sample_image_", o.tiny_model ? "tiny_" : "", px, "_", r.steps, "steps",
                                       device_tag(o.device), "_", dtype);
  ls::bench::reset_gpu_peaks(o.device);
  print_figure(name + "_s", ls::bench::timed(o.device, [&] { pipeline.generate(r); }), 3);
  print_gpu_peaks(name, o.device);

  ls::models::SdxlConditioner conditioner(model.te1, model.te2);
  const double text_s = ls::bench::timed(o.device, [&] {
    ls::sample::encode_prompt_pair(conditioner, pipeline.tokenizer(), r.prompt, r.negative_prompt);
  });
  print_figure(ls::str_cat("sample_text_encode_pair", device_tag(o.device), "_", dtype, "_s"), text_s, 4);
  const auto latent =
      torch::randn({1, model.config.vae.embed_dim, o.side, o.side}, torch::TensorOptions().device(o.device));
  model.vae->decode(latent);  // the pipeline's decode ran at this shape already; once more for the allocator
  const double decode_s = ls::bench::timed(o.device, [&] { model.vae->decode(latent); });
  print_figure(ls::str_cat("sample_vae_decode_", px, device_tag(o.device), "_fp32_s"), decode_s, 4);
}

/// The figures as they were before the options: tiny at 8x8 (20 steps), then full size at 64x64.
int legacy_figures(const Options& o) {
  const bool tiny_only = o.tiny_only;
  ls::models::SdxlUnet tiny{ls::models::SdxlUnetConfig::tiny()};
  tiny->eval();
  std::printf("sample_step_tiny_8x8_cfg_ms %.2f\n", 1e3 * seconds_per_step(tiny, c10::kCPU, 8, 7.0, 20));
  std::fflush(stdout);
  if (tiny_only) return 0;

  const double reference = o.reference ? reference_step(o) : 0;
  ls::models::SdxlUnet unet{ls::models::SdxlUnetConfig{}};
  unet->eval();
  const double with_cfg = seconds_per_step(unet, c10::kCPU, 64, 7.0, 3);
  std::printf("sample_step_64x64_cfg_fp32_s %.2f\n", with_cfg);
  print_ratio("sample_step_64x64_cfg_fp32", with_cfg, reference);
  std::fflush(stdout);
  const double without = seconds_per_step(unet, c10::kCPU, 64, 1.0, 3);
  std::printf("sample_step_64x64_nocfg_fp32_s %.2f\n", without);
  std::printf("cfg_over_nocfg_ratio %.3f\n", with_cfg / without);
  std::printf("peak_rss_gb %.2f\n", static_cast<double>(ls::bench::peak_rss_kb()) / (1024.0 * 1024.0));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::bench::run_main([&] {
    const Options o = parse_options(argc, argv);
    ls::core::init_threads();
    torch::manual_seed(0);
    torch::NoGradGuard no_grad;
    if (!o.extended) return legacy_figures(o);
    // First, alone: the reference's model and ours would not both fit beside each other.
    const double reference = o.reference ? reference_step(o) : 0;

    const auto config = o.tiny_model ? ls::models::SdxlConfig::tiny() : ls::models::SdxlConfig{};
    const ls::models::Components parts{true, o.image, o.image};
    ls::models::SdxlModel model = ls::bench::random_sdxl(config, parts, o.device, o.dtype);
    model.unet->eval();
    step_figures(o, model.unet, reference);
    if (o.image) image_figures(o, model);
    if (!o.device.is_cuda())
      print_figure("sample_peak_rss_gb", static_cast<double>(ls::bench::peak_rss_kb()) / (1024.0 * 1024.0), 2);
    return 0;
  });
}
