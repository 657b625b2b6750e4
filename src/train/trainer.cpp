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
#include "dist/gradient_reducer.h"
#include "dist/process_group.h"
#include "io/png_text.h"
#include "lora/kohya_format.h"
#include "models/sdxl_conditioner.h"
#include "train/lora_metadata.h"
#include "train/loss.h"
#include "train/objective_config.h"
#include "train/text_inputs.h"
#include "train/train_log.h"
#include "train/train_session.h"
#include "train/train_state.h"
#include "train/train_step.h"
#include "train/step_split.h"

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

// Every draw of one step (VAE posterior, noise, offset, timesteps) comes from generators seeded by
// (seed, epoch, step), the LoRA dropouts of a micro-batch from (seed, epoch, step, first image): a
// resumed run draws what the full run drew.
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
  /// What the ranks agree on after one step's backward passes and gradient sum.
  struct StepOutcome {
    double loss = 0;  // the step's mean loss over all its images
    bool stop = false;  // some rank was asked to stop (SIGINT, a hook) after this step
    int nonfinite_ranks = 0;  // ranks that met a NaN/inf loss (the step is not taken)
    double local_nonfinite = 0;  // this rank's first non-finite loss, with its images
    std::vector<std::string> local_nonfinite_images;
  };
  /// This rank's micro-batches of one step (step_split.h): draws, forward, backward, then the
  /// gradient sum over the ranks; the optimizer has not stepped yet.
  StepOutcome accumulate_step(const data::BatchPlan& plan, int epoch, int64_t step_index,
                              const data::BatchLoader& loader);
  /// One micro-batch's forward and backward (its loss weighted by `count` / `step_images`); returns
  /// its loss (not finite: nothing back-propagated).
  double micro_step(const data::Batch& batch, const StepDraws& draws, int64_t count, int64_t step_images);
  /// The batch's latents, scaled: from the cache, or through the VAE (a posterior sample with `eps`).
  torch::Tensor scaled_latents(const data::Batch& batch, const torch::Tensor& eps);
  /// The UNet's text conditioning: from the text-encoder cache, or through the encoders.
  struct Conditioning {
    torch::Tensor context, pooled;
  };
  Conditioning text_conditioning(const data::Batch& batch);
  /// The optimizer step `step_index` of the epoch, its log record and progress.
  void take_step(int epoch, int64_t step_index, double mean_loss, core::Progress& progress);
  /// false: fp16 loss scaling found non-finite gradients and skipped the step.
  bool optimizer_step();
  void reach(const Milestone& m, int epoch_number, bool last);
  /// Whether this rank was asked to stop after step `step` (SIGINT, the hook).
  bool stop_requested(int64_t step) const;
  /// Saves the state the run continues from and ends the run as interrupted.
  void interrupt(core::Progress& progress);
  [[noreturn]] void stop_on_nonfinite(const StepOutcome& outcome, int epoch);
  /// ddp_check_every_n_steps: every rank must hold rank 0's LoRA, bit for bit.
  void check_ranks_agree();
  /// Rank 0 writes every file; the other ranks compute and keep quiet.
  bool writer() const { return s_->rank == 0; }
  /// The final LoRA, state, log event and loss curve.
  void finish(core::Progress& progress);
  void save_lora_file(const std::string& name, int epoch);
  std::string save_state(const std::string& name);
  void sample_images(const std::string& suffix);
  std::string out(const std::string& name) const { return (fs::path(s_->config.output_dir) / name).string(); }
  void say(const std::string& line) const {
    if (hooks_.print && writer()) hooks_.print(line);
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
  std::unique_ptr<dist::GradientReducer> reducer_;  // with several ranks
  RunStamp stamp_;  // the run's session id and start time: from the state when resumed
  LoraMetadata run_metadata_;  // every key the run's files share (rank 0)
  std::future<LoraMetadata> model_metadata_;  // the checkpoint's name and hashes, joined at the first save
};

/// kohya's sample images: <output_dir>/sample/<name>_<e000005|000100>_<index>_<seed>.png, made
/// with the LoRA as it is now (dropouts off), without touching the training generators.
void Trainer::sample_images(const std::string& suffix) {
  TrainSession& s = *s_;
  // The other ranks wait at the next step's collectives (sampling counts against ddp_timeout).
  if (s.sample_requests.empty() || !writer()) return;
  // The pipeline shares the model's modules, so the LoRA under training is attached.
  if (!sampler_)
    sampler_ = std::make_unique<sample::Pipeline>(
        s.model, *s.tokenizer, s.device, models::ModelPrediction{s.config.v_parameterization, s.config.zero_terminal_snr});
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
    a1111::add_prediction(p, sampler_->prediction());
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

torch::Tensor Trainer::scaled_latents(const data::Batch& batch, const torch::Tensor& eps) {
  TrainSession& s = *s_;
  if (batch.latents.defined()) return to_device(batch.latents, s.device) * s.vae_scale;
  torch::NoGradGuard no_grad;
  const auto dtype = s.model.vae->parameters().front().scalar_type();
  return models::sample_latent(s.model.vae->encode(batch.pixels.to(s.device, dtype)), eps) * s.vae_scale;
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

double Trainer::micro_step(const data::Batch& batch, const StepDraws& draws, int64_t count, int64_t step_images) {
  TrainSession& s = *s_;
  const TrainConfig& c = s.config;
  StepInputs in;
  in.latents = scaled_latents(batch, draws.posterior_eps);  // [B, 4, h, w] float32
  in.noise = finish_noise(draws, in.latents, draw_options(c, !s.latent_cache));
  in.ip_noise = draws.ip_noise;
  in.timesteps = draws.timesteps;
  const Conditioning text = text_conditioning(batch);
  const SizeTensors sizes = size_tensors(batch.sizes, s.device);
  in.context = text.context;
  in.y = models::size_embedding(text.pooled, sizes.original_hw, sizes.crop_tl, sizes.target_hw);
  in.loss_weights = batch.loss_weights.to(s.device);
  if (batch.masks.defined()) in.mask = batch.masks.to(s.device);
  const LossParts loss = step_loss(s.model.unet, s.noise, in, s.base_dtype, s.loss);
  const double value = loss.loss.item<double>();  // the logged loss: the step's one host read
  if (!std::isfinite(value)) return value;  // nothing back-propagated: the weights stay good
  // Weigh first, then scale: the scale is a power of two (exact), so without fp16 the gradients
  // are the unscaled run's bit for bit (x * (1/3) and x / 3 round differently).
  (weight_share(loss.loss, count, step_images) * s.scaler.scale()).backward();
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
  if (!writer()) return;
  if (model_metadata_.valid())
    for (auto& [k, v] : model_metadata_.get()) run_metadata_[k] = std::move(v);
  lora::save_lora(out(name), *s_->network, s_->save_dtype,
                  saved_lora_metadata(run_metadata_, stamp_, epoch, position_.global_step));
}

std::string Trainer::save_state(const std::string& name) {
  const std::string dir = out(name);
  result_.last_state = dir;
  if (!writer()) return dir;
  TrainStateInfo info;
  info.position = position_;
  info.seed = s_->seed;
  info.config_toml = train_config_toml(s_->config);
  info.epoch_loss_sum = epoch_loss_sum_;
  info.epoch_loss_count = epoch_loss_count_;
  info.loss_scaler = s_->scaler.state();
  info.world_size = s_->world_size;
  info.stamp = stamp_;
  save_train_state(dir, *s_->network, *s_->optimizer, info);
  return dir;
}

TrainResult Trainer::run(const TrainStateInfo* resumed) {
  start(resumed);
  if (s_->config.sample_at_first && !resumed) sample_images("e000000");
  SigintScope sigint;
  if (s_->group) reducer_ = std::make_unique<dist::GradientReducer>(*s_->group, s_->trainable);
  const data::BatchLoader loader(s_->datasets, s_->seed, s_->latent_cache.get());
  core::Progress progress("train", s_->max_steps - position_.global_step, "step", writer());
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
  result_.log_path = out(log_file_name(c.output_name));
  if (!writer()) return;
  // A state from before stamps were saved gets the one its run made (unless SOURCE_DATE_EPOCH
  // has changed since).
  stamp_ = resumed && resumed->stamp ? *resumed->stamp : new_run_stamp(c, s.seed);
  run_metadata_ = run_lora_metadata(s, stamp_);
  model_metadata_ = start_model_lora_metadata(c.pretrained_model_name_or_path, a1111::user_cache_dir());
  if (!resumed) fs::remove(result_.log_path);  // a new run starts a new log
  log_ = std::make_unique<TrainLog>(result_.log_path, position_.global_step);
  nlohmann::json start{{"event", resumed ? "resume" : "start"}, {"step", position_.global_step},
                       {"max_steps", s.max_steps}, {"epochs", s.num_epochs},
                       {"batches_per_epoch", s.batches_per_epoch}, {"seed", s.seed},
                       {"time", static_cast<int64_t>(std::time(nullptr))}};
  // Who wrote this log: rank 0 of the group writes every file of a data-parallel run.
  start["rank"] = s.rank;
  start["world_size"] = s.world_size;
  if (s.group) start["backend"] = s.group->backend();
  log_->event(start.dump());
  say(str_cat("training ", s.max_steps, " steps (", s.num_epochs, " epochs of ", s.updates_per_epoch,
              " optimizer steps, ", s.batches_per_epoch, " batches each), from step ", position_.global_step));
  if (s.group) {
    const int batch = s.datasets.front().config.batch_size;  // the dataset TOML's, else train_batch_size
    say(str_cat("data parallel: ", s.world_size, " ranks (", s.group->backend(), "), batch ", batch,
                " per rank and micro-batch, ", static_cast<int64_t>(batch) * s.batches_per_step,
                " images per optimizer step; rank 0 writes the outputs"));
  }
}

Trainer::EpochEnd Trainer::run_epoch(int epoch, const data::BatchLoader& loader, core::Progress& progress) {
  const TrainSession& s = *s_;
  const TrainConfig& c = s.config;
  const std::vector<data::BatchPlan> plan = data::epoch_plan(s.datasets, s.seed, epoch, s.batches_per_step);
  const auto steps = static_cast<int64_t>(plan.size());
  const int64_t first = epoch == position_.epoch ? position_.batch_in_epoch : 0;
  if (first == 0) epoch_loss_sum_ = 0, epoch_loss_count_ = 0;
  step_start_ = core::monotonic_seconds();
  for (int64_t si = first; si < steps && position_.global_step < s.max_steps; ++si) {
    const StepOutcome outcome = accumulate_step(plan[si], epoch, si, loader);
    if (outcome.nonfinite_ranks > 0) stop_on_nonfinite(outcome, epoch);
    take_step(epoch, si, outcome.loss, progress);
    const int64_t step = position_.global_step;
    const bool last = step >= s.max_steps;
    reach({step, c.save_every_n_steps, c.sample_every_n_steps, step_file_name(c.output_name, step),
           zero_padded(step)},
          epoch + 1, last);
    if (outcome.stop && !last) {
      interrupt(progress);
      return EpochEnd::kInterrupted;
    }
  }
  if (position_.batch_in_epoch == steps && position_.epoch == epoch) {
    // Epoch done: the next state starts the next epoch at its first step.
    position_.epoch = epoch + 1;
    position_.batch_in_epoch = 0;
    const bool last = epoch + 1 >= s.num_epochs || position_.global_step >= s.max_steps;
    reach({epoch + 1, c.save_every_n_epochs, c.sample_every_n_epochs, epoch_file_name(c.output_name, epoch + 1),
           "e" + zero_padded(epoch + 1)},
          epoch + 1, last);
  }
  return EpochEnd::kDone;
}

Trainer::StepOutcome Trainer::accumulate_step(const data::BatchPlan& plan, int epoch, int64_t step_index,
                                              const data::BatchLoader& loader) {
  TrainSession& s = *s_;
  const TrainConfig& c = s.config;
  const auto n = static_cast<int64_t>(plan.images.size());
  const int batch_size = s.datasets.at(static_cast<size_t>(plan.dataset)).config.batch_size;
  const std::vector<MicroBatch> micro =
      rank_micro_batches(n, batch_size, s.world_size, s.rank, c.gradient_accumulation_steps);
  const auto e = static_cast<uint64_t>(epoch), si = static_cast<uint64_t>(step_index);
  seed_generators(s.device, core::derive_seed(s.seed, {e, si, core::purpose_id("train_step")}));
  const StepDrawOptions draws_wanted = draw_options(c, !s.latent_cache);
  const int64_t down = s.model.config.vae.downscale();
  const StepDraws draws = draw_step(n, s.model.config.vae.embed_dim, plan.bucket.height / down,
                                    plan.bucket.width / down, s.noise, draws_wanted, s.device);
  StepOutcome outcome;
  double weighted = 0;  // this rank's images' losses, each times its image count
  for (size_t i = 0; i < micro.size(); ++i) {
    const MicroBatch& m = micro[i];
    data::BatchPlan part = plan;
    part.images.assign(plan.images.begin() + m.first, plan.images.begin() + m.first + m.count);
    const data::Batch batch = loader.load(part, epoch, step_index, m.first);
    // Only the backward that closes the step reduces (accumulation's earlier ones stay local).
    if (reducer_ && i + 1 == micro.size()) reducer_->sync_next_backward();
    seed_generators(s.device, core::derive_seed(s.seed, {e, si, static_cast<uint64_t>(m.first),
                                                         core::purpose_id("train_micro")}));
    const double loss = micro_step(batch, draws.slice(m.first, m.count), m.count, n);
    if (!std::isfinite(loss)) {
      if (outcome.local_nonfinite_images.empty()) outcome.local_nonfinite = loss, outcome.local_nonfinite_images = batch.paths;
      continue;
    }
    weighted += loss * static_cast<double>(m.count);
  }
  const bool local_stop = stop_requested(position_.global_step + 1);
  const bool local_bad = !outcome.local_nonfinite_images.empty();
  if (!s.group) {
    outcome.loss = weighted / static_cast<double>(n);
    outcome.stop = local_stop;
    outcome.nonfinite_ranks = local_bad ? 1 : 0;
    return outcome;
  }
  if (micro.empty()) reducer_->sync_next_backward();  // nothing to train on: zeros for the others' sum
  reducer_->finish();
  // One small sum per step: the step's loss for the log, and every rank stops at the same step.
  const torch::Tensor agreed = torch::tensor({weighted, local_stop ? 1.0 : 0.0, local_bad ? 1.0 : 0.0},
                                             torch::TensorOptions(torch::kDouble).device(s.device));
  s.group->all_reduce_sum({agreed});
  const torch::Tensor host = agreed.cpu();
  const double* v = host.data_ptr<double>();
  outcome.loss = v[0] / static_cast<double>(n);
  outcome.stop = v[1] > 0;
  outcome.nonfinite_ranks = static_cast<int>(std::lround(v[2]));
  return outcome;
}

void Trainer::take_step(int epoch, int64_t step_index, double mean_loss, core::Progress& progress) {
  TrainSession& s = *s_;
  const double scale = s.scaler.scale();
  const bool taken = optimizer_step();
  ++position_.global_step;
  position_.epoch = epoch;
  position_.batch_in_epoch = step_index + 1;
  epoch_loss_sum_ += mean_loss;
  ++epoch_loss_count_;
  const int every = s.config.ddp_check_every_n_steps;
  if (s.group && every > 0 && position_.global_step % every == 0) check_ranks_agree();
  const double now = core::monotonic_seconds();
  if (log_) {
    log_->append({position_.global_step, epoch + 1, mean_loss, epoch_loss_sum_ / epoch_loss_count_,
                  s.scheduler->last_lrs(), now - step_start_, s.scaler.enabled() ? scale : 0.0, !taken});
  }
  step_start_ = now;
  char suffix[96];
  std::snprintf(suffix, sizeof suffix, "epoch %d/%d loss %.4f", epoch + 1, s.num_epochs,
                epoch_loss_sum_ / epoch_loss_count_);
  progress.set_suffix(suffix);
  progress.advance();
}

void Trainer::check_ranks_agree() {
  TrainSession& s = *s_;
  torch::NoGradGuard no_grad;
  // A float64 sum and sum of squares over every LoRA value: equal ranks give equal bits (their
  // updates come from the same reduced gradients); any divergence shows in both.
  torch::Tensor mine = torch::zeros({2}, torch::TensorOptions(torch::kDouble).device(s.device));
  for (const torch::Tensor& p : s.trainable) {
    const torch::Tensor d = p.to(torch::kDouble);
    mine[0] += d.sum();
    mine[1] += (d * d).sum();
  }
  torch::Tensor rank0 = mine.clone();
  s.group->broadcast(rank0, 0);
  const torch::Tensor differs =
      torch::full({1}, torch::equal(mine, rank0) ? 0.0 : 1.0, torch::TensorOptions(torch::kDouble).device(s.device));
  s.group->all_reduce_sum({differs});
  const auto ranks = std::lround(differs.cpu().item<double>());
  LS_CHECK(ranks == 0, "rank ", s.rank, " of ", s.world_size, ": after step ", position_.global_step, " ", ranks,
           " rank(s) hold a LoRA different from rank 0's (ddp_check_every_n_steps); this is a lorastudio bug, ",
           "please report it with the config");
}

void Trainer::reach(const Milestone& m, int epoch_number, bool last) {
  const auto due = [&](const std::optional<int>& every) { return every && m.n % *every == 0; };
  if (due(m.save_every) && !last) {
    save_lora_file(m.file_stem + ".safetensors", epoch_number);
    if (s_->config.save_state) save_state(m.file_stem + "-state");
  }
  if (due(m.sample_every)) sample_images(m.sample_suffix);
}

bool Trainer::stop_requested(int64_t step) const {
  const bool hook = hooks_.stop_after_step && hooks_.stop_after_step(step);
  return g_interrupts.load() > 0 || hook;
}

void Trainer::interrupt(core::Progress& progress) {
  progress.finish();
  const std::string dir = save_state(s_->config.output_name + "-state");
  if (log_) log_->event(nlohmann::json{{"event", "interrupt"}, {"step", position_.global_step}, {"state", dir}}.dump());
  say(str_cat("interrupted at step ", position_.global_step, ": state saved to ", dir, "; continue with --resume ", dir));
  result_.steps_done = position_.global_step;
  result_.interrupted = true;
}

void Trainer::stop_on_nonfinite(const StepOutcome& outcome, int epoch) {
  const TrainConfig& c = s_->config;
  const int64_t step = position_.global_step;
  if (log_) {
    nlohmann::json j{{"event", "nonfinite_loss"}, {"step", step + 1}};
    if (!outcome.local_nonfinite_images.empty()) j["batch"] = outcome.local_nonfinite_images;
    log_->event(j.dump());
  }
  std::string where = "no state saved (save_state is off)";
  if (c.save_state)
    where = "state of step " + std::to_string(step) + " saved to " + save_state(step_file_name(c.output_name, step) + "-state");
  std::string what;
  if (!outcome.local_nonfinite_images.empty()) {
    what = str_cat("loss is ", outcome.local_nonfinite, " at step ", step + 1, " (epoch ", epoch + 1, ", images ",
                   outcome.local_nonfinite_images.front(), "...)");
  } else {
    what = str_cat("the loss is not finite on ", outcome.nonfinite_ranks, " other rank(s) at step ", step + 1,
                   " (epoch ", epoch + 1, "; their errors name the images)");
  }
  if (s_->group) what = str_cat("rank ", s_->rank, " of ", s_->world_size, ": ", what);
  LS_FAIL(what, "; check the data, or start again with a lower learning rate (a resume keeps the saved settings); ",
          where);
}

void Trainer::finish(core::Progress& progress) {
  const TrainSession& s = *s_;
  const TrainConfig& c = s.config;
  progress.finish();
  result_.steps_done = position_.global_step;
  result_.final_lora = out(c.output_name + ".safetensors");
  save_lora_file(c.output_name + ".safetensors", std::min(position_.epoch + (position_.batch_in_epoch > 0), s.num_epochs));
  if (c.save_state || c.save_state_on_train_end) save_state(c.output_name + "-state");
  result_.loss_curve = out(c.output_name + "-loss.png");
  if (log_) {
    log_->event(nlohmann::json{{"event", "end"}, {"step", position_.global_step}, {"lora", result_.final_lora},
                               {"time", static_cast<int64_t>(std::time(nullptr))}}.dump());
    write_loss_curve(result_.loss_curve, read_step_records(log_->path()));
  }
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

TrainResult run_session(std::unique_ptr<TrainSession> session, const TrainHooks& hooks,
                        const TrainStateInfo* resumed) {
  Trainer trainer(std::move(session), hooks);
  return trainer.run(resumed);
}

}  // namespace ls::train
