// kohya-ss/sd-scripts training keys lorastudio does not take, as rows of the training key table
// (train_config.cpp): those that change nothing here are ignored with a note; those that would
// change training are taken only at their off value (store_true false, None, 0, "l2"), so a kohya
// config means the same or is refused.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/key_table.h"

namespace ls::train {

struct KohyaOnlyKey {
  std::string name;
  std::string ignored;                     // why it changes nothing here; "" for a refused key
  std::optional<core::OffValue> refused_unless;
};

/// The ignored and the refused-unless-off kohya keys, in that order.
std::vector<KohyaOnlyKey> kohya_only_train_keys();

}  // namespace ls::train
