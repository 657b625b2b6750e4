// libFuzzer target for the training config layers (train/train_config.cpp, train_config_kohya.cpp,
// train_config_validate.cpp over toml++): kohya's flat training TOML or one [section] deep, the key
// table with its ignored and refused-unless-off kohya keys, duplicate keys, path resolution, then
// train::validate's cross-key rules. parse_train_config is the in-memory entry point; no file is
// opened. Any byte string must parse or throw ls::Error; a crash, a sanitizer report or another
// exception (toml++, std::out_of_range from a number, ...) is a bug. A config that parses must also
// survive the effective-config round trip the trainer relies on for resume: train_config_toml ->
// parse_train_config gives a config with the same TOML text and no resume_changes, and validate
// gives the same verdict on both.
// toml++ is Debian's libtomlplusplus.so, as the build links it (see fuzz_dataset_toml.cpp for why it
// is not compiled in). validate() reaches the objective and schedule names, whose headers use ATen
// types: hence libtorch.
// fuzz-what: training TOML (kohya keys, sections, validation, effective-config round trip)
// fuzz-sources: src/train/train_config.cpp src/train/train_config_kohya.cpp src/train/train_config_validate.cpp
// fuzz-sources: src/train/lr_schedule.cpp src/train/objective_config.cpp src/train/loss.cpp
// fuzz-sources: src/models/noise_schedule.cpp src/text/prompt_windows.cpp
// fuzz-sources: src/core/key_table.cpp src/core/toml_value.cpp src/core/nearest_name.cpp src/core/strings.cpp
// fuzz-cflags: -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1
// fuzz-libs: -ltomlplusplus
// fuzz-torch: yes
// fuzz-max-len: 4096
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "train/train_config.h"

namespace {

// validate()'s verdict: "" when the config passes, else its message.
std::string fzt_verdict(const ls::train::TrainConfig& c) {
  try {
    ls::train::validate(c);
  } catch (const ls::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ls::train::TrainConfig config;
  std::vector<std::string> notes;
  try {
    config = ls::train::parse_train_config(text, "fuzz.toml", "/fuzz-base", &notes);
  } catch (const ls::Error&) {
    return 0;
  }
  const std::string verdict = fzt_verdict(config);
  // Not caught from here: the effective config of a parsed config must read back.
  const std::string written = ls::train::train_config_toml(config);
  const ls::train::TrainConfig again = ls::train::parse_train_config(written, "effective.toml", "", nullptr);
  if (ls::train::train_config_toml(again) != written) __builtin_trap();
  if (!ls::train::resume_changes(config, again).empty()) __builtin_trap();
  if (fzt_verdict(again) != verdict) __builtin_trap();
  return 0;
}
