// `lorastudio train`: an SDXL LoRA trained the way kohya-ss/sd-scripts sdxl_train_network.py does
// (train_network.py NetworkTrainer.train): frozen base, LoRA on the UNet and/or both text
// encoders, epsilon objective on DDPM timesteps, parameter groups [text encoders, UNet], kohya's
// step counting, file names and save cadence, resumable states, SIGINT = save state and stop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dist/dist_env.h"
#include "train/train_config.h"
#include "train/train_step.h"

namespace ls::models {
struct SdxlModel;
}
namespace ls::lora {
class LoraNetworkImpl;
}

namespace ls::train {

struct TrainSession;
struct TrainStateInfo;

struct TrainResult {
  int64_t steps_done = 0;     // optimizer steps at the end (resumed runs count from the start)
  int64_t max_steps = 0;
  bool interrupted = false;   // SIGINT: the state was saved
  std::string final_lora;     // output_name.safetensors when the run finished
  std::string last_state;     // the newest state folder written, if any
  std::string log_path;       // the JSONL log
  std::string loss_curve;     // the PNG
};

struct TrainHooks {
  /// A line for the person running the training (what will run, notes, cache counts, where an
  /// interrupted run continues); the library prints nothing itself, `lorastudio train` prints these.
  std::function<void(const std::string& line)> print;
  /// Called once training has finished (not on interrupt), with the network still applied.
  std::function<void(models::SdxlModel&, lora::LoraNetworkImpl&)> after_training;
  /// Called after every optimizer step; returning true stops as SIGINT would (tests).
  std::function<bool(int64_t global_step)> stop_after_step;
  /// Called after each micro-batch's backward with its inputs, its loss and the network (its
  /// gradients filled, not yet unscaled or clipped): parity tests read them and may change the
  /// gradients (injected faults).
  std::function<void(const StepInputs& inputs, double loss, lora::LoraNetworkImpl& network)>
      after_backward;
};

/// Runs (or resumes, with config.resume) a training. Throws ls::Error for bad input and for a
/// NaN/inf loss (after saving the state of the last good step when save_state is on). With a
/// launched `env` (RANK / WORLD_SIZE set) this process is one rank of a data-parallel run: it
/// joins the group, trains its share of every step and, unless it is rank 0, writes nothing.
TrainResult run_training(TrainConfig config, const TrainHooks& hooks = {}, const dist::DistEnv& env = {});

/// The training loop over a built session (run_training's last stage); `resumed` is the state's
/// position, already loaded into the session's network and optimizer.
TrainResult run_session(std::unique_ptr<TrainSession> session, const TrainHooks& hooks, const TrainStateInfo* resumed);

/// The kohya file names: <name>-000005.safetensors, <name>-step00000100.safetensors, and the
/// states <name>-000005-state, <name>-step00000100-state, <name>-state.
std::string epoch_file_name(const std::string& output_name, int epoch);
std::string step_file_name(const std::string& output_name, int64_t step);
/// The run's JSONL log, <name>-log.jsonl (read back by `sweep status`).
std::string log_file_name(const std::string& output_name);

}  // namespace ls::train
