// kohya-ss/sd-scripts training keys lorastudio does not take (used by train_config.cpp): those that
// change nothing here are ignored with a note; those that would change training are accepted only
// at their off value (store_true false, None, 0, "l2"), so a kohya config means the same or is refused.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ls::train {

/// A kohya key's value as read: typed when it comes from TOML, plain text from the command line.
struct KohyaValue {
  enum class Kind { kBool, kNumber, kString, kOther };
  Kind kind = Kind::kOther;
  bool from_text = false;  // command-line text: "false", "0", "none" are read as what they spell
  bool boolean = false;
  double number = 0;
  std::string text;   // kString
  std::string shown;  // for messages
};
KohyaValue kohya_text_value(const std::string& text);

/// kohya keys taken and ignored because they change nothing here (xformers, sdpa,
/// max_data_loader_n_workers, ...), each with the reason printed once as a note.
const std::vector<std::pair<std::string, std::string>>& ignored_kohya_keys();
/// The reason `key` is ignored, or nullptr when it is not an ignored kohya key.
const std::string* ignored_kohya_reason(const std::string& key);

struct UnsupportedKohyaKey;
/// nullptr when `key` is not a kohya key lorastudio refuses.
const UnsupportedKohyaKey* find_unsupported_kohya_key(const std::string& key);
/// True when `value` is the key's off value (an empty string always is: kohya's None).
bool is_off(const UnsupportedKohyaKey& key, const KohyaValue& value);
/// " (or set it to <off value>)", or "" for keys whose off value is None.
std::string off_hint(const UnsupportedKohyaKey& key);

}  // namespace ls::train
