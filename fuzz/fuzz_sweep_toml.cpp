// libFuzzer target for the sweep definition TOML (sweep/sweep_file.cpp over toml++): output_dir,
// base as a file name or a [base] table of training keys (one [section] deep), [grid] axes,
// [[variants]], [sheet] with its own keys and the sheet keys, then the plan of runs with their
// labels, hashes, defaults and train::validate. parse_sweep is the in-memory entry point; the file is
// "named" in a folder that does not exist, so base = "x.toml" fails to read and every path stays
// unresolved. Any bytes must plan or throw ls::Error; a crash, a sanitizer report, another exception
// or a hang is a bug. A sweep that plans must keep what docs/sweep.md promises:
//  - (number of variants, or 1) x (the product of the grid axes' lengths) runs, at most 1000 (a
//    larger product is refused, not planned for minutes), indexed in order, variants outermost; the
//    varied keys are the grid keys with more than one value, then "variant";
//  - each run names one value per varied key, has folder <output_dir>/<label>-<hash>, its hash is
//    the first 8 hex of the SHA-256 of its effective config less output_dir, resume and device, and
//    no two runs share a hash;
//  - each run's config has a seed, a save cadence and save_state; it passes train::validate and its
//    effective config reads back (train_config_toml -> parse_train_config) to the same text (checked
//    on the first 64 runs and the last: the rest differ from them only in the grid's values);
//  - a [sheet] has prompts, distinct seeds >= 0 and distinct finite strengths, as the sheet's cells
//    need them (the sheet is rendered after every run has trained).
// toml++ is Debian's libtomlplusplus.so (see fuzz_dataset_toml.cpp). The sweep reaches training,
// sheet and sample code whose model, LoRA and image parts it never calls: lld's --gc-sections drops
// them (see fuzz_sheet_toml.cpp), so these sources are enough.
// fuzz-what: sweep TOML (base, [grid], [[variants]], [sheet], run plan)
// fuzz-sources: src/sweep/sweep_file.cpp src/train/train_config.cpp src/train/train_config_kohya.cpp
// fuzz-sources: src/train/train_config_validate.cpp src/train/lr_schedule.cpp src/train/objective_config.cpp
// fuzz-sources: src/train/loss.cpp src/models/noise_schedule.cpp src/text/prompt_windows.cpp
// fuzz-sources: src/sheet/sheet_definition.cpp src/sample/request.cpp src/sample/pipeline.cpp
// fuzz-sources: src/sample/sampler_names.cpp src/core/runtime.cpp src/models/model_prediction.cpp
// fuzz-sources: src/lora/lora_arg.cpp src/core/sha256.cpp src/core/key_table.cpp src/core/toml_value.cpp
// fuzz-sources: src/core/nearest_name.cpp src/core/strings.cpp src/core/atomic_file.cpp
// fuzz-cflags: -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1 -ffunction-sections -fdata-sections
// fuzz-cflags: -isystem /usr/include/opencv4
// fuzz-libs: -ltomlplusplus -fuse-ld=lld -Wl,--gc-sections
// fuzz-torch: yes
// fuzz-max-len: 4096
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "core/error.h"
#include "core/sha256.h"
#include "sweep/sweep_file.h"
#include "train/train_config.h"

namespace fs = std::filesystem;

namespace {

constexpr const char* kSwFile = "/nonexistent-fuzz-dir/sweep.toml";
// Runs whose hash, validation and effective-config round trip are redone (and the last one): each
// costs about three times what planning the run did, and a sweep may hold 1000 runs.
constexpr size_t kSwDeepChecks = 64;

struct SwShape {
  double runs = 1;  // as a double: a product that overflows size_t must not wrap here
  std::vector<std::string> varied;
};

// What the file's tables promise, read here with toml++ on its own.
SwShape sw_shape(std::string_view text) {
  SwShape s;
  const toml::table root = toml::parse(text, std::string_view(kSwFile));
  if (const toml::table* grid = root["grid"].as_table()) {
    for (const auto& [k, node] : *grid) {
      const size_t n = node.as_array()->size();
      s.runs *= static_cast<double>(n);
      if (n > 1) s.varied.emplace_back(k.str());
    }
  }
  if (const toml::array* variants = root["variants"].as_array()) {
    s.runs *= static_cast<double>(variants->size());
    s.varied.emplace_back("variant");
  }
  return s;
}

std::string sw_hash(ls::train::TrainConfig config) {
  config.output_dir.clear();
  config.resume.clear();
  config.device.clear();
  return ls::core::sha256_hex(ls::train::train_config_toml(config)).substr(0, 8);
}

void sw_check_run(const ls::sweep::Sweep& sweep, size_t i, std::set<std::string>& hashes) {
  const ls::sweep::SweepRun& run = sweep.runs[i];
  // A run names "variant" first, then the varied grid keys; varied_keys lists "variant" last.
  std::vector<std::string> keys;
  const std::vector<std::string>& varied = sweep.varied_keys;
  const bool variants = !varied.empty() && varied.back() == "variant";
  if (variants) keys.emplace_back("variant");
  keys.insert(keys.end(), varied.begin(), varied.end() - variants);
  if (run.index != i || run.values.size() != keys.size()) __builtin_trap();
  for (size_t k = 0; k < keys.size(); ++k)
    if (run.values[k].first != keys[k]) __builtin_trap();
  if (run.hash.size() != 8 || run.hash.find_first_not_of("0123456789abcdef") != std::string::npos) __builtin_trap();
  if (run.folder != (fs::path(sweep.output_dir) / (run.label + "-" + run.hash)).string() ||
      run.config.output_dir != run.folder)
    __builtin_trap();
  if (!hashes.insert(run.hash).second) __builtin_trap();
  const ls::train::TrainConfig& c = run.config;
  if (!c.seed || !c.save_state || (!c.save_every_n_epochs && !c.save_every_n_steps)) __builtin_trap();
  if (i >= kSwDeepChecks && i + 1 != sweep.runs.size()) return;
  if (sw_hash(c) != run.hash) __builtin_trap();
  ls::train::validate(c);
  const std::string written = ls::train::train_config_toml(c);
  if (ls::train::train_config_toml(ls::train::parse_train_config(written, "effective.toml", "", nullptr)) != written)
    __builtin_trap();
}

void sw_check_sheet(const ls::sweep::SweepSheetSpec& sheet) {
  if (!sheet.present) return;
  if (sheet.prompts.empty() || sheet.seeds.empty() || sheet.strengths.empty()) __builtin_trap();
  for (size_t i = 0; i < sheet.seeds.size(); ++i) {
    if (sheet.seeds[i] < 0) __builtin_trap();
    for (size_t j = 0; j < i; ++j)
      if (sheet.seeds[i] == sheet.seeds[j]) __builtin_trap();
  }
  for (size_t i = 0; i < sheet.strengths.size(); ++i) {
    if (!std::isfinite(sheet.strengths[i])) __builtin_trap();
    for (size_t j = 0; j < i; ++j)
      if (sheet.strengths[i] == sheet.strengths[j]) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ls::sweep::Sweep sweep;
  try {
    sweep = ls::sweep::parse_sweep(text, kSwFile);
  } catch (const ls::Error&) {
    return 0;
  }
  // Not caught from here: a sweep that planned is valid TOML with valid runs.
  const SwShape shape = sw_shape(text);
  if (static_cast<double>(sweep.runs.size()) != shape.runs || shape.runs > 1000 || sweep.varied_keys != shape.varied)
    __builtin_trap();
  std::set<std::string> hashes;
  for (size_t i = 0; i < sweep.runs.size(); ++i) sw_check_run(sweep, i, hashes);
  sw_check_sheet(sweep.sheet);
  return 0;
}
