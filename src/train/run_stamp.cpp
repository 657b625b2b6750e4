// A run's session id and start time; see run_stamp.h.
#include "train/run_stamp.h"

#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/sha256.h"
#include "core/strings.h"

namespace ls::train {

RunStamp new_run_stamp(const TrainConfig& config, uint64_t seed) {
  // The seed is hashed as the run uses it (a drawn seed is not in the config until a resume).
  std::string identity = "seed=" + std::to_string(seed) + "\n";
  for (const TrainKeyInfo& k : train_keys())
    if (k.text && !k.resume_may_change && k.name != "seed") identity += k.name + "=" + k.text(config) + "\n";
  RunStamp stamp;
  stamp.session_id = std::stoull(core::sha256_hex(identity).substr(0, 8), nullptr, 16);
  if (const char* epoch = std::getenv("SOURCE_DATE_EPOCH"); epoch && *epoch) {
    int64_t seconds = 0;
    LS_CHECK(core::parse_int64(epoch, seconds) && seconds >= 0, "SOURCE_DATE_EPOCH='", epoch,
             "' is not a Unix time in whole seconds; unset it or set e.g. SOURCE_DATE_EPOCH=$(date +%s)");
    stamp.started_at = static_cast<double>(seconds);
  }
  return stamp;
}

}  // namespace ls::train
