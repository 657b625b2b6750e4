// The metadata of a LoRA file a training writes: lora/kohya_format's network keys (ss_network_*,
// modelspec.*) plus kohya's training keys (ss_learning_rate, ss_epoch, ss_steps, ...), as
// train_network.py's metadata dict spells them, so kohya's tools and A1111 read them.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "train/train_session.h"

namespace ls::train {

/// For the file saved at `epoch` (kohya counts from 1) after `step` optimizer steps. A function
/// of the training alone: no wall-clock date, so a resumed run writes the same bytes.
std::map<std::string, std::string> trained_lora_metadata(const TrainSession& s, int epoch, int64_t step);

}  // namespace ls::train
