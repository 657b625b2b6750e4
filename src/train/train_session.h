// Everything a training run holds, built from a TrainConfig: device and dtypes, the indexed
// datasets, the tokenizer, the frozen SDXL parts with the LoRA network applied, the caches, the
// optimizer with kohya's parameter groups and the LR scheduler, and kohya's step arithmetic
// (train_network.py: updates per epoch = ceil(batches / accumulation); max_train_epochs wins).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "data/dataset.h"
#include "data/latent_cache.h"
#include "lora/network.h"
#include "models/sdxl_model.h"
#include "models/noise_schedule.h"
#include "sample/pipeline.h"
#include "text/clip_tokenizer.h"
#include "train/loss.h"
#include "train/loss_scaler.h"
#include "train/lr_schedule.h"
#include "train/train_config.h"

namespace ls::dist {
class ProcessGroup;
}

namespace ls::train {

struct TrainSession {
  TrainConfig config;
  c10::Device device{c10::kCPU};
  c10::ScalarType base_dtype = c10::kFloat;  // frozen UNet / text encoders
  c10::ScalarType lora_dtype = c10::kFloat;  // float32 unless full_bf16 / full_fp16
  c10::ScalarType vae_dtype = c10::kFloat;   // float32 unless bf16 (SDXL's VAE overflows in fp16)
  c10::ScalarType save_dtype = c10::kFloat;
  uint64_t seed = 0;
  std::vector<std::string> cache_reports;  // what each cache held and encoded, a line each, for the user

  data::DataConfig data;
  std::vector<data::DatasetIndex> datasets;
  int64_t train_images = 0, reg_images = 0;  // with repeats, as kohya's metadata counts them
  std::optional<text::ClipTokenizer> tokenizer;
  int n_windows = 1;

  models::SdxlModel model;
  lora::LoraNetworkOptions network_options;
  lora::LoraNetwork network{nullptr};
  float vae_scale = 0.13025f;

  /// sample_prompts: the images to make during training.
  std::vector<sample::ImageRequest> sample_requests;

  std::unique_ptr<data::LatentCache> latent_cache;
  std::unique_ptr<data::TextCache> text_cache;

  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<LrScheduler> scheduler;
  LossScaler scaler;  // enabled for mixed_precision fp16 (GradScaler semantics)
  std::vector<std::string> group_names;  // "text_encoder", "unet" (kohya's order)
  std::vector<torch::Tensor> trainable;  // every LoRA parameter
  models::NoiseSchedule noise = models::NoiseSchedule::sdxl();  // with zero_terminal_snr rescaled
  LossOptions loss;

  int64_t batches_per_epoch = 0, updates_per_epoch = 0, max_steps = 0;
  int num_epochs = 0;

  /// Data parallel (dist/): this process's rank and the group (null for one process, which then
  /// reduces nothing). Every rank builds the same session; only rank 0 writes files.
  int rank = 0, world_size = 1;
  dist::ProcessGroup* group = nullptr;  // owned by run_training
  /// world_size x gradient_accumulation_steps: the micro-batches one optimizer step is cut into.
  int batches_per_step = 1;
  /// scale_lr: the factor the learning rates were multiplied by (1 without it).
  double lr_scale = 1;
};

/// The parts a cache stands in for (the VAE with cached latents, the text encoders with cached
/// outputs) move to `where`: the CPU while training, the device while samples are made.
void place_cached_parts(TrainSession& s, c10::Device where);

/// Builds the session; `notes` collects one-line remarks for the user (ignored keys, refusals
/// turned into defaults, sampling unavailable). Throws ls::Error for bad input. With a `group`
/// (a data-parallel run) the ranks agree on a drawn seed, split the cache filling, and start from
/// rank 0's LoRA initialisation.
std::unique_ptr<TrainSession> build_session(const TrainConfig& config, std::vector<std::string>& notes,
                                            dist::ProcessGroup* group = nullptr);

/// What a config will do, without loading any weights: kohya's step arithmetic over the indexed
/// dataset (image headers only) and the LoRA's size from the checkpoint's architecture
/// (lora::plan_network; the file's metadata estimated as `lorastudio plan` does).
struct TrainingPlan {
  int64_t batches_per_epoch = 0, updates_per_epoch = 0, max_steps = 0;
  int num_epochs = 0;
  int64_t lora_parameters = 0;
  uint64_t lora_file_bytes = 0;  // one saved file, at save_precision
};
TrainingPlan plan_training(const TrainConfig& config, int world_size = 1);

/// kohya's network_args ("conv_dim=4", "conv_alpha=1", "rank_dropout=0.1", "module_dropout=0.1",
/// "dropout=..." is network_dropout, the block-wise and LoRA+ keys of lora/block_weights.h) applied
/// over the config's own keys; `notes` gets kohya's warnings about them.
lora::LoraNetworkOptions network_options(const TrainConfig& config, std::vector<std::string>* notes = nullptr);

}  // namespace ls::train
