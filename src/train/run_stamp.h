// What identifies one training run in its LoRA files: kohya's ss_session_id ("which group of epochs
// the model came from") and ss_training_started_at. Made once when a run starts and saved in its
// states, so a resumed run writes the values the interrupted one wrote. Unlike kohya (a random id
// and time.time()) both are a function of the training alone unless SOURCE_DATE_EPOCH is set: two
// runs of one config write the same bytes, which is what the resume tests compare.
#pragma once

#include <cstdint>

#include "train/train_config.h"

namespace ls::train {

struct RunStamp {
  uint64_t session_id = 0;  // in [0, 2^32), as kohya's random.randint(0, 2**32)
  double started_at = 0;    // Unix seconds (kohya: time.time()); 0 = not recorded
};

/// A new run's stamp. session_id: 32 bits of the SHA-256 of the seed and of every key a resume
/// may not change (what the run computes; not paths, outputs or cadence), so the same training
/// gets the same id and another training another. started_at: $SOURCE_DATE_EPOCH (the
/// reproducible-builds variable: whole Unix seconds) when set, else 0. Throws ls::Error for a
/// SOURCE_DATE_EPOCH that is not a whole non-negative number.
RunStamp new_run_stamp(const TrainConfig& config, uint64_t seed);

}  // namespace ls::train
