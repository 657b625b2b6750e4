#include "train/trainer.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>

#include <ATen/Context.h>
#include <nlohmann/json.hpp>

#include "a1111/request_params.h"
#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/rng.h"
#include "io/png_text.h"
#include "lora/kohya_format.h"
#include "models/sdxl_conditioner.h"
#include "train/lora_metadata.h"
#include "train/loss.h"
#include "train/text_inputs.h"
#include "train/train_log.h"
#include "train/train_session.h"
#include "train/train_state.h"
#include "train/train_step.h"

namespace fs = std::filesystem;

namespace ls::train {
namespace {

std::atomic<int> g_interrupts{0};

extern "C" void on_sigint(int) {
  // The first Ctrl-C asks for a clean stop at the next step; a second one is the default action.
  if (g_interrupts.fetch_add(1) >= 1) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

class SigintScope {
 public:
  SigintScope() {
    g_interrupts = 0;
    previous_ = std::signal(SIGINT, on_sigint);
  }
  ~SigintScope() { std::signal(SIGINT, previous_); }

 private:
  void (*previous_)(int);
};

// Every draw of one micro-batch (VAE posterior, noise, offset, timesteps, LoRA dropouts) comes
// from generators seeded by (seed, epoch, batch): a resumed run draws what the full run drew.
void seed_generators(c10::Device device, uint64_t seed) {
  for (const c10::Device d : {c10::Device(c10::kCPU), device}) {
    at::Generator gen = at::globalContext().defaultGenerator(d);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
}

// Cached tensors come from the CPU: on CUDA they are staged in pinned memory so the copy runs
// asynchronously with the host (the stream orders it before the kernels that read it).
torch::Tensor to_device(const torch::Tensor& t, c10::Device device) {
  if (!device.is_cuda()) return t.to(device);
  return t.pin_memory().to(device, /*non_blocking=*/true);
}

// The saved run's config is the TOML it wrote into the state (absolute paths): read back with the
// same key table, compared key by key.
void require_same_training(const std::string& state_dir, const std::string& saved_toml, const TrainConfig& now) {
  const TrainConfig saved = parse_train_config(saved_toml, state_dir + "/state.json (config)", "");
  std::string diff;
  for (const std::string& change : resume_changes(saved, now)) diff += (diff.empty() ? "" : ", ") + change;
  LS_CHECK(diff.empty(), state_dir, ": the resumed run must train with the saved settings; changed: ", diff);
}

// kohya's six-digit counters: epoch file names (-000005) and sample image names (000100, e000005).
std::string zero_padded(int64_t n) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(n));
  return buf;
}

class Trainer {
 public:
  Trainer(std::unique_ptr<TrainSession> session, const TrainHooks& hooks) : s_(std::move(session)), hooks_(hooks) {}

  TrainResult run(const TrainStateInfo* resumed);

 private:
  /// A point where kohya's save_every_n_* / sample_every_n_* may fire: optimizer step n, or the end
  /// of epoch n. One rule for both: save when n is a multiple of the save cadence (the final save
  /// covers the last point), sample when it is a multiple of the sample cadence.
  struct Milestone {
    int64_t n;
    std::optional<int> save_every, sample_every;
    std::string file_stem;      // <name>-000005 or <name>-step00000100
    std::string sample_suffix;  // e000005 or 000100
  };
  enum class EpochEnd { kDone, kInterrupted };

  /// Restores the position of a resumed run, opens the log and says what will run.
  void start(const TrainStateInfo* resumed);
  EpochEnd run_epoch(int epoch, const data::BatchLoader& loader, core::Progress& progress);
  /// One micro-batch: its draws, forward and backward; returns its loss (not finite: nothing back-propagated).
  double micro_step(const data::Batch& batch, int epoch, int64_t batch_index);
  /// The batch's latents, scaled: from the cache, or through the VAE (a posterior sample).
  torch::Tensor scaled_latents(const data::Batch& batch);
  /// The UNet's text conditioning: from the text-encoder cache, or through the encoders.
  struct Conditioning {
    torch::Tensor context, pooled;
  };
  Conditioning text_conditioning(const data::Batch& batch);
  /// The optimizer step closing batches up to `batch_index`, its log record and progress.
  void take_step(int epoch, int64_t batch_index, double mean_loss, core::Progress& progress);
  /// false: fp16 loss scaling found non-finite gradients and skipped the step.
  bool optimizer_step();
  void reach(const Milestone& m, int epoch_number, bool last);
  bool stop_requested() const;
  /// Saves the state the run continues from and ends the run as interrupted.
  void interrupt(core::Progress& progress);
  [[noreturn]] void stop_on_nonfinite(double loss, int epoch, const data::Batch& batch);
  /// The final LoRA, state, log event and loss curve.
  void finish(core::Progress& progress);
  void save_lora_file(const std::string& name, int epoch);
  std::string save_state(const std::string& name);
  void sample_images(const std::string& suffix);
  std::string out(const std::string& name) const { return (fs::path(s_->config.output_dir) / name).string(); }
  void say(const std::string& line) const {
    if (hooks_.print) hooks_.print(line);
  }

  std::unique_ptr<TrainSession> s_;
  const TrainHooks& hooks_;
  std::unique_ptr<TrainLog> log_;
  TrainPosition position_;  // after the last optimizer step
  double epoch_loss_sum_ = 0;
  int64_t epoch_loss_count_ = 0;
  double step_start_ = 0;  // core::monotonic_seconds() when the current optimizer step began
  TrainResult result_;
  std::unique_ptr<sample::Pipeline> sampler_;
};

/// kohya's sample images: <output_dir>/sample/<name>_<e000005|000100>_<index>_<seed>.png, made
/// with the LoRA as it is now (dropouts off), without touching the training generators.
void Trainer::sample_images(const std::string& suffix) {
  TrainSession& s = *s_;
  if (s.sample_requests.empty()) return;
  // The pipeline shares the model's modules, so the LoRA under training is attached.
  if (!sampler_) sampler_ = std::make_unique<sample::Pipeline>(s.model, *s.tokenizer, s.device);
  place_cached_parts(s, s.device);
  const bool network_training = s.network->is_training();
  const bool unet_training = s.model.unet->is_training();
  s.network->eval();
  s.model.unet->eval();
  fs::create_directories(out("sample"));
  for (size_t i = 0; i < s.sample_requests.size(); ++i) {
    const sample::ImageRequest& r = s.sample_requests[i];
    const cv::Mat image = sampler_->generate(r);
    // No checkpoint and no LoRA files: nothing is hashed (the LoRA under training is no file yet).
    a1111::FileHashCache no_files("");
    a1111::GenerationParams p = a1111::generation_params(r, "", no_files, false);
    p.model = fs::path(s.config.pretrained_model_name_or_path).stem().string();
    p.extra["Training"] = s.config.output_name + " " + suffix;
    char name[64];
    std::snprintf(name, sizeof name, "_%02zu_%lld.png", i, static_cast<long long>(r.seed));
    io::write_png_with_text(out("sample/" + s.config.output_name + "_" + suffix + name), image,
                            {{"parameters", a1111::format_infotext(p)}});
  }
  s.network->train(network_training);
  s.model.unet->train(unet_training);
  place_cached_parts(s, c10::kCPU);
}

torch::Tensor Trainer::scaled_latents(const data::Batch& batch) {
  TrainSession& s = *s_;
  if (batch.latents.defined()) return to_device(batch.latents, s.device) * s.vae_scale;
  torch::NoGradGuard no_grad;
  const auto dtype = s.model.vae->parameters().front().scalar_type();
  return models::sample_latent(s.model.vae->encode(batch.pixels.to(s.device, dtype))) * s.vae_scale;
}

Trainer::Conditioning Trainer::text_conditioning(const data::Batch& batch) {
  TrainSession& s = *s_;
  if (s.text_cache) {
    std::vector<torch::Tensor> ctx, pool;
    for (const std::string& caption : batch.captions) {
      const data::TensorMap m = s.text_cache->load(caption);
      ctx.push_back(m.at("context"));
      pool.push_back(m.at("pooled"));
    }
    return {to_device(torch::stack(ctx), s.device).to(s.base_dtype), to_device(torch::stack(pool), s.device).to(s.base_dtype)};
  }
  models::SdxlConditioner cond(s.model.te1, s.model.te2);
  const TextIds ids = tokenize_captions(*s.tokenizer, batch.captions, s.n_windows, s.device);
  // Without text-encoder LoRA the encoders need no graph.
  c10::optional<torch::NoGradGuard> no_grad;
  if (!s.network_options.text_encoders) no_grad.emplace();
  const models::SdxlTextEmbedding e = cond.encode(ids.ids_l, ids.ids_g);
  return {e.context, e.pooled_g};
}

double Trainer::micro_step(const data::Batch& batch, int epoch, int64_t batch_index) {
  TrainSession& s = *s_;
  const TrainConfig& c = s.config;
  seed_generators(s.device, core::derive_seed(s.seed, {static_cast<uint64_t>(epoch), static_cast<uint64_t>(batch_index),
                                                       core::purpose_id("train_step")}));
  at::Generator gen = at::globalContext().defaultGenerator(s.device);
  StepInputs in;
  in.latents = scaled_latents(batch);  // [B, 4, h, w] float32
  in.noise = apply_noise_offset(in.latents, torch::randn(in.latents.sizes(), gen, in.latents.options()), c.noise_offset,
                                0.0, gen);
  in.timesteps = s.noise.sample_timesteps(in.latents.size(0), c.min_timestep, c.max_timestep, gen);
  const Conditioning text = text_conditioning(batch);
  const SizeTensors sizes = size_tensors(batch.sizes, s.device);
  in.context = text.context;
  in.y = models::size_embedding(text.pooled, sizes.original_hw, sizes.crop_tl, sizes.target_hw);
  in.loss_weights = batch.loss_weights.to(s.device);
  const LossParts loss = step_loss(s.model.unet, s.noise, in, s.base_dtype, c.min_snr_gamma);
  const double value = loss.loss.item<double>();  // the logged loss: the step's one host read
  if (!std::isfinite(value)) return value;  // nothing back-propagated: the weights stay good
  // Divide first, then scale: the scale is a power of two (exact), so without fp16 the gradients are
  // the unscaled run's bit for bit (x * (1/3) and x / 3 round differently).
  (loss.loss / static_cast<double>(c.gradient_accumulation_steps) * s.scaler.scale()).backward();
  if (hooks_.after_backward) hooks_.after_backward(in, value, *s.network);
  return value;
}

bool Trainer::optimizer_step() {
  TrainSession& s = *s_;
  // fp16: gradients back to their true size before clipping; a non-finite one skips the step.
  const bool finite = s.scaler.unscale(s.trainable);
  if (finite) {
    if (s.config.max_grad_norm > 0) clip_grad_norm(s.trainable, s.config.max_grad_norm);
    s.optimizer->step();
    s.scheduler->step();  // accelerate skips the scheduler with a skipped optimizer step
  }
  s.scaler.update(finite);
  for (torch::Tensor& p : s.trainable) p.mutable_grad() = torch::Tensor();  // set_to_none, as torch 2 does
  return finite;
}

void Trainer::save_lora_file(const std::string& name, int epoch) {
  lora::save_lora(out(name), *s_->network, s_->save_dtype, trained_lora_metadata(*s_, epoch, position_.global_step));
}

std::string Trainer::save_state(const std::string& name) {
  TrainStateInfo info;
  info.position = position_;
  info.seed = s_->seed;
  info.config_toml = train_config_toml(s_->config);
  info.epoch_loss_sum = epoch_loss_sum_;
  info.epoch_loss_count = epoch_loss_count_;
  info.loss_scaler = s_->scaler.state();
  const std::string dir = out(name);
  save_train_state(dir, *s_->network, *s_->optimizer, info);
  result_.last_state = dir;
  return dir;
}

TrainResult Trainer::run(const TrainStateInfo* resumed) {
  start(resumed);
  if (s_->config.sample_at_first && !resumed) sample_images("e000000");
  SigintScope sigint;
  const data::BatchLoader loader(s_->datasets, s_->seed, s_->latent_cache.get());
  core::Progress progress("train", s_->max_steps - position_.global_step, "step");
  for (int epoch = position_.epoch; epoch < s_->num_epochs && position_.global_step < s_->max_steps; ++epoch) {
    if (run_epoch(epoch, loader, progress) == EpochEnd::kInterrupted) return result_;
  }
  finish(progress);
  return result_;
}

void Trainer::start(const TrainStateInfo* resumed) {
  TrainSession& s = *s_;
  const TrainConfig& c = s.config;
  if (resumed) {
    position_ = resumed->position;
    epoch_loss_sum_ = resumed->epoch_loss_sum;
    epoch_loss_count_ = resumed->epoch_loss_count;
    s.scaler = LossScaler(s.scaler.enabled(), resumed->loss_scaler);
    s.scheduler->set_last_step(position_.global_step - s.scaler.state().skipped_steps);
  }
  result_.max_steps = s.max_steps;
  if (!resumed) fs::remove(out(log_file_name(c.output_name)));  // a new run starts a new log
  log_ = std::make_unique<TrainLog>(out(log_file_name(c.output_name)), position_.global_step);
  result_.log_path = log_->path();
  log_->event(nlohmann::json{{"event", resumed ? "resume" : "start"}, {"step", position_.global_step},
                             {"max_steps", s.max_steps}, {"epochs", s.num_epochs},
                             {"batches_per_epoch", s.batches_per_epoch}, {"seed", s.seed},
                             {"time", static_cast<int64_t>(std::time(nullptr))}}.dump());
  say(str_cat("training ", s.max_steps, " steps (", s.num_epochs, " epochs of ", s.batches_per_epoch, " batches, ",
              s.updates_per_epoch, " optimizer steps each), from step ", position_.global_step));
}

Trainer::EpochEnd Trainer::run_epoch(int epoch, const data::BatchLoader& loader, core::Progress& progress) {
  const TrainSession& s = *s_;
  const TrainConfig& c = s.config;
  const std::vector<data::BatchPlan> plan = data::epoch_plan(s.datasets, s.seed, epoch);
  const auto batches = static_cast<int64_t>(plan.size());
  const int64_t first = epoch == position_.epoch ? position_.batch_in_epoch : 0;
  if (first == 0) epoch_loss_sum_ = 0, epoch_loss_count_ = 0;
  double loss_sum = 0;  // over the micro-batches of the current optimizer step
  int micro = 0;
  step_start_ = core::monotonic_seconds();
  for (int64_t bi = first; bi < batches && position_.global_step < s.max_steps; ++bi) {
    const data::Batch batch = loader.load(plan[bi], epoch, bi);
    const double loss = micro_step(batch, epoch, bi);
    if (!std::isfinite(loss)) stop_on_nonfinite(loss, epoch, batch);
    loss_sum += loss;
    ++micro;
    if ((bi + 1) % c.gradient_accumulation_steps != 0 && bi + 1 != batches) continue;
    take_step(epoch, bi, loss_sum / micro, progress);
    loss_sum = 0, micro = 0;
    const int64_t step = position_.global_step;
    const bool last = step >= s.max_steps;
    reach({step, c.save_every_n_steps, c.sample_every_n_steps, step_file_name(c.output_name, step),
           zero_padded(step)},
          epoch + 1, last);
    if (stop_requested() && !last) {
      interrupt(progress);
      return EpochEnd::kInterrupted;
    }
  }
  if (position_.batch_in_epoch == batches && position_.epoch == epoch) {
    // Epoch done: the next state starts the next epoch at its first batch.
    position_.epoch = epoch + 1;
    position_.batch_in_epoch = 0;
    const bool last = epoch + 1 >= s.num_epochs || position_.global_step >= s.max_steps;
    reach({epoch + 1, c.save_every_n_epochs, c.sample_every_n_epochs, epoch_file_name(c.output_name, epoch + 1),
           "e" + zero_padded(epoch + 1)},
          epoch + 1, last);
  }
  return EpochEnd::kDone;
}

void Trainer::take_step(int epoch, int64_t batch_index, double mean_loss, core::Progress& progress) {
  TrainSession& s = *s_;
  const double scale = s.scaler.scale();
  const bool taken = optimizer_step();
  ++position_.global_step;
  position_.epoch = epoch;
  position_.batch_in_epoch = batch_index + 1;
  epoch_loss_sum_ += mean_loss;
  ++epoch_loss_count_;
  const double now = core::monotonic_seconds();
  log_->append({position_.global_step, epoch + 1, mean_loss, epoch_loss_sum_ / epoch_loss_count_,
                s.scheduler->last_lrs(), now - step_start_, s.scaler.enabled() ? scale : 0.0, !taken});
  step_start_ = now;
  char suffix[96];
  std::snprintf(suffix, sizeof suffix, "epoch %d/%d loss %.4f", epoch + 1, s.num_epochs,
                epoch_loss_sum_ / epoch_loss_count_);
  progress.set_suffix(suffix);
  progress.advance();
}

void Trainer::reach(const Milestone& m, int epoch_number, bool last) {
  const auto due = [&](const std::optional<int>& every) { return every && m.n % *every == 0; };
  if (due(m.save_every) && !last) {
    save_lora_file(m.file_stem + ".safetensors", epoch_number);
    if (s_->config.save_state) save_state(m.file_stem + "-state");
  }
  if (due(m.sample_every)) sample_images(m.sample_suffix);
}

bool Trainer::stop_requested() const {
  const bool hook = hooks_.stop_after_step && hooks_.stop_after_step(position_.global_step);
  return g_interrupts.load() > 0 || hook;
}

void Trainer::interrupt(core::Progress& progress) {
  progress.finish();
  const std::string dir = save_state(s_->config.output_name + "-state");
  log_->event(nlohmann::json{{"event", "interrupt"}, {"step", position_.global_step}, {"state", dir}}.dump());
  say(str_cat("interrupted at step ", position_.global_step, ": state saved to ", dir, "; continue with --resume ", dir));
  result_.steps_done = position_.global_step;
  result_.interrupted = true;
}

void Trainer::stop_on_nonfinite(double loss, int epoch, const data::Batch& batch) {
  const TrainConfig& c = s_->config;
  const int64_t step = position_.global_step;
  log_->event(nlohmann::json{{"event", "nonfinite_loss"}, {"step", step + 1}, {"batch", batch.paths}}.dump());
  std::string where = "no state saved (save_state is off)";
  if (c.save_state)
    where = "state of step " + std::to_string(step) + " saved to " + save_state(step_file_name(c.output_name, step) + "-state");
  LS_FAIL("loss is ", loss, " at step ", step + 1, " (epoch ", epoch + 1, ", images ", batch.paths.front(),
          "...); check the data, or start again with a lower learning rate (a resume keeps the saved settings); ", where);
}

void Trainer::finish(core::Progress& progress) {
  const TrainSession& s = *s_;
  const TrainConfig& c = s.config;
  progress.finish();
  result_.steps_done = position_.global_step;
  result_.final_lora = out(c.output_name + ".safetensors");
  save_lora_file(c.output_name + ".safetensors", std::min(position_.epoch + (position_.batch_in_epoch > 0), s.num_epochs));
  if (c.save_state || c.save_state_on_train_end) save_state(c.output_name + "-state");
  log_->event(nlohmann::json{{"event", "end"}, {"step", position_.global_step}, {"lora", result_.final_lora},
                             {"time", static_cast<int64_t>(std::time(nullptr))}}.dump());
  result_.loss_curve = out(c.output_name + "-loss.png");
  write_loss_curve(result_.loss_curve, read_step_records(log_->path()));
  if (hooks_.after_training) hooks_.after_training(s_->model, *s_->network);
}

}  // namespace

std::string epoch_file_name(const std::string& output_name, int epoch) { return output_name + "-" + zero_padded(epoch); }

std::string log_file_name(const std::string& output_name) { return output_name + "-log.jsonl"; }

std::string step_file_name(const std::string& output_name, int64_t step) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "-step%08lld", static_cast<long long>(step));
  return output_name + buf;
}

TrainResult run_training(TrainConfig config, const TrainHooks& hooks) {
  std::optional<TrainStateInfo> resumed;
  if (!config.resume.empty()) {
    resumed = read_train_state_info(config.resume);
    // The saved run's seed (possibly drawn at random) continues unless one is given.
    if (!config.seed) config.seed = resumed->seed;
  }
  std::vector<std::string> notes;
  std::unique_ptr<TrainSession> session = build_session(config, notes);
  if (hooks.print) {
    for (const std::string& line : session->cache_reports) hooks.print(line);
    for (const std::string& n : notes) hooks.print("note: " + n);
  }
  TrainSession& s = *session;
  if (resumed) {
    require_same_training(config.resume, resumed->config_toml, s.config);
    load_train_state(config.resume, *s.network, *s.optimizer);
  }
  fs::create_directories(s.config.output_dir);
  core::write_file_atomic(fs::path(s.config.output_dir) / (s.config.output_name + "-train.toml"),
                          train_config_toml(s.config));
  Trainer trainer(std::move(session), hooks);
  return trainer.run(resumed ? &*resumed : nullptr);
}

}  // namespace ls::train
