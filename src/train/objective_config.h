// The training objective's keys (kohya's loss and noise options) turned into what the step uses:
// the loss options, the step's draw options and the schedule, with kohya's rules between them
// (train_util.verify_training_args) checked once before anything loads.
#pragma once

#include <string>
#include <vector>

#include "data/dataset_config.h"
#include "models/noise_schedule.h"
#include "train/loss.h"
#include "train/step_split.h"
#include "train/train_config.h"

namespace ls::train {

LossOptions loss_options(const TrainConfig& config);
/// posterior: the VAE posterior is drawn (latents not cached).
StepDrawOptions draw_options(const TrainConfig& config, bool posterior);
/// SDXL's schedule, with zero_terminal_snr rescaled.
models::NoiseSchedule training_schedule(const TrainConfig& config);

/// kohya's rules, one line each: loss_type and huber_schedule names, huber_c > 0,
/// adaptive_noise_scale needs noise_offset, scale_v_pred_loss_like_noise_pred needs
/// v_parameterization, v_pred_like_loss excludes it, non-negative strengths and counts. A
/// combination kohya only warns about (zero_terminal_snr without v_parameterization) adds a note.
void validate_objective(const TrainConfig& config, std::vector<std::string>* notes = nullptr);

/// kohya's mask rules over the datasets: conditioning_data_dir (mask images) needs masked_loss
/// (kohya's ControlNet-style subsets exist only with it); masked_loss with no subset holding
/// conditioning_data_dir or alpha_mask adds a note (nothing is masked).
void check_loss_masks(const TrainConfig& config, const data::DataConfig& data, std::vector<std::string>& notes);

}  // namespace ls::train
