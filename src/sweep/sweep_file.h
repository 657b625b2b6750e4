// A sweep: many training runs that differ in a few training keys, read from one TOML file.
//
//   output_dir = "sweeps/dog"        # the runs' folders go here (relative to this file)
//   base = "train.toml"              # a training config as `train` reads it, or a [base] table
//   [grid]                           # every combination of these values
//   learning_rate = [1e-4, 5e-5]
//   network_dim = [16, 32]
//   [[variants]]                     # named settings, each crossed with the grid
//   name = "adafactor"
//   optimizer_type = "Adafactor"
//
// Every key of [base], [grid] and [[variants]] is a training key (kohya names), read through the
// training key table, so an unknown key or a value of the wrong type is an error naming the file
// and line before anything trains. A run's folder is a readable label of its varied values plus
// a short hash of its effective config: the same effective config is the same run.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sheet/sheet_definition.h"
#include "train/train_config.h"

namespace ls::sweep {

struct SweepRun {
  size_t index = 0;
  std::string label;  // "lr1e-4_dim32": the values that vary between runs ("base" when none do)
  std::vector<std::pair<std::string, std::string>> values;  // varied key -> value as written
  std::string hash;    // 8 hex of the SHA-256 of the effective config (output folder left out)
  std::string folder;  // <output_dir>/<label>-<hash>
  train::TrainConfig config;  // output_dir = folder; save_state on, so the run can resume
};

/// The [sheet] table: how the runs are compared (sweep_sheet.h makes the sheet from it).
///   [sheet]
///   prompts = ["a photo of sks dog", "sks dog on a beach"]
///   negative_prompt = "blurry"
///   seeds = [1, 2]
///   strengths = [0.75, 1.0]
///   sampler = "DPM++ 2M Karras"   # and steps, cfg_scale, width, height, ... as `sheet` reads them
///   every_n_epochs = 2            # or epochs = [5, 10], or last_n_epochs = 3
struct SweepSheetSpec {
  bool present = false;
  /// The sheet keys given in the table (sheet_definition.h: title, output_dir, the request fields,
  /// model, tokenizer, device, dtype, ...); model, tokenizer, model_config, device and dtype not
  /// given come from the runs' training configs.
  sheet::SheetDefinition settings;
  std::vector<std::string> given;   // the sheet keys the table set
  std::vector<std::string> prompts;
  std::vector<int64_t> seeds;       // default: the table's seed, else 0
  std::vector<double> strengths = {1.0};
  std::vector<int64_t> epochs;      // only these epochs (empty: all)
  int64_t every_n_epochs = 0;       // only epochs divisible by N, and each run's last
  int64_t last_n_epochs = 0;        // only each run's last K epochs
};

struct Sweep {
  std::string file;        // the sweep TOML
  std::string output_dir;  // absolute
  std::vector<std::string> varied_keys;  // grid keys with more than one value, then "variant"
  std::vector<SweepRun> runs;            // variants outermost, then the grid in file order
  std::vector<std::string> notes;        // ignored kohya keys, once each
  SweepSheetSpec sheet;
};

/// Reads and plans a sweep of at most 1000 runs; every run's config is validated (train::validate),
/// an invalid one named by its label. Unset in the base: seed = 0 (runs differ by the swept values only),
/// save_every_n_epochs = 1 (the sheet compares epochs), save_state = true (runs resume).
Sweep load_sweep(const std::string& path);
/// load_sweep on the file's text already in memory; `path` names it in errors and is the folder
/// whose folder relative paths resolve against (a base = "file.toml" is still read from disk).
Sweep parse_sweep(std::string_view text, const std::string& path);

/// The label text of a value: numbers in short scientific form below 0.01 ("1e-3", "5e-5"),
/// paths by their file stem, everything else with characters outside [A-Za-z0-9._+-] dropped (blanks, '=', ',' and '/' become '-').
std::string label_value(const std::string& key, const std::string& shown);
/// A varied value as the review's summary shows it: numbers as in labels ("1e-4"), paths by
/// their file stem, other text as written.
std::string facet_value(const std::string& key, const std::string& shown);
/// A key's short name in labels (learning_rate -> lr, network_dim -> dim, ...; else the key).
std::string label_key(const std::string& key);

}  // namespace ls::sweep
