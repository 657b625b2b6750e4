// The metadata of a LoRA file a training writes: lora/kohya_format's network keys (ss_network_*,
// modelspec.*), kohya's training keys and dataset keys (train/dataset_metadata.h), as
// kohya-ss/sd-scripts train_network.py builds its metadata dict (~lines 1000-1225) and save_model
// completes it: every value the text Python's str() gives it ("None", "True", "0.0001"), JSON
// values as json.dumps writes them. Keys kohya writes for features lorastudio lacks hold kohya's
// value for "off" (ss_loss_type l2, ss_ip_noise_gamma None, ...).
#pragma once

#include <cstdint>
#include <future>
#include <map>
#include <string>

#include "train/run_stamp.h"
#include "train/train_session.h"

namespace ls::train {

using LoraMetadata = std::map<std::string, std::string>;

/// The keys every file of a run shares: all but ss_epoch, ss_steps and ss_training_finished_at,
/// and the model keys (model_lora_metadata). A function of the session and its stamp: no wall
/// clock, so a resumed run writes the same bytes as an uninterrupted one.
LoraMetadata run_lora_metadata(const TrainSession& s, const RunStamp& stamp);

/// ss_sd_model_name (the checkpoint's file name) with kohya's two hashes: ss_sd_model_hash
/// (a1111::legacy_model_hash) and ss_new_sd_model_hash (the whole file's SHA-256, from
/// a1111::FileHashCache in `cache_dir`: a checkpoint is read once, later runs and `sample` reuse
/// it). A file that cannot be hashed gets the name alone. Slow for a large uncached checkpoint
/// (~50 s for 7 GB): the trainer runs it beside the first steps.
LoraMetadata model_lora_metadata(const std::string& checkpoint, const std::string& cache_dir);

/// model_lora_metadata on a thread of its own, started now: the first save waits for it, while a
/// run that ends before (an interrupt, an error) does not wait (the thread finishes alone).
std::future<LoraMetadata> start_model_lora_metadata(const std::string& checkpoint, const std::string& cache_dir);

/// One saved file's metadata: `run` with ss_epoch (kohya counts from 1), ss_steps (optimizer
/// steps done) and ss_training_finished_at. kohya writes time.time() at every save there; it is
/// the run's start time here (stamp.started_at), so the bytes stay a function of the training.
LoraMetadata saved_lora_metadata(LoraMetadata run, const RunStamp& stamp, int epoch, int64_t step);

/// kohya's ss_optimizer: the optimizer class's module path and name, with the optimizer_args as
/// `key=str(value)` joined by "," in parentheses ("torch.optim.adamw.AdamW(weight_decay=0.01)",
/// "transformers.optimization.Adafactor(relative_step=True)": kohya adds relative_step when
/// absent). An optimizer_type lorastudio does not know is written as given.
std::string kohya_optimizer_name(const TrainConfig& config);

}  // namespace ls::train
