// The resumable state of a training run (kohya's --save_state / --resume): one folder holding the
// LoRA weights in their training dtype, the optimizer's state, and a JSON file with the position
// in the data order, the scheduler step, the seed, the effective config and the run's stamp (its
// LoRA metadata's session id and start time). Every random draw of a step is derived from
// (seed, epoch, batch), so the position replaces generator states.
// The folder is written beside its final name and renamed into place: a kill leaves the previous
// state intact.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "train/loss_scaler.h"
#include "train/run_stamp.h"

namespace ls::lora {
class LoraNetworkImpl;
}

namespace ls::train {

struct TrainPosition {
  int64_t global_step = 0;     // optimizer steps done
  int epoch = 0;               // 0-based epoch being trained
  int64_t batch_in_epoch = 0;  // optimizer steps of that epoch's plan done (data::epoch_plan's entries)
};

struct TrainStateInfo {
  TrainPosition position;
  uint64_t seed = 0;
  std::string config_toml;      // the effective config of the run that wrote the state
  double epoch_loss_sum = 0;    // running loss of the current epoch (the progress average)
  int64_t epoch_loss_count = 0;
  LossScalerState loss_scaler;  // fp16's dynamic loss scale (unused otherwise)
  int world_size = 1;           // ranks of the run that wrote it (every rank holds the same state)
  int format = 0;               // 1: before data-parallel training (a step was one plan batch)
  /// The run's session id and start time for its LoRA metadata; absent in states written before
  /// lorastudio recorded them (a resume then makes them anew, see new_run_stamp).
  std::optional<RunStamp> stamp;
};

void save_train_state(const std::string& dir, const lora::LoraNetworkImpl& network,
                      const torch::optim::Optimizer& optimizer, const TrainStateInfo& info);

/// Reads state.json only (to check a resume before building anything).
TrainStateInfo read_train_state_info(const std::string& dir);

/// Restores the LoRA weights (names and shapes must match) and the optimizer state (the optimizer
/// must have been built with the same parameter groups in the same order).
TrainStateInfo load_train_state(const std::string& dir, lora::LoraNetworkImpl& network,
                                torch::optim::Optimizer& optimizer);

}  // namespace ls::train
