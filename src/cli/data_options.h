// The dataset flags shared by `dataset check`, `dataset cache` and (later) `train`: a kohya TOML
// or a folder of N_name subfolders, with kohya's flag names for the folder case.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "data/dataset_config.h"

namespace ls::cli {

struct DataSourceOptions {
  std::string path;  // TOML file or train_data_dir
  data::FolderSource folder;
  int resolution = 1024;
};

/// Adds PATH (positional) and --reg-dir, --resolution, --batch-size, --caption-extension,
/// --enable-bucket/--no-bucket ..., with kohya's underscore spellings as aliases.
void add_data_source_options(CLI::App& cmd, DataSourceOptions& o);

/// Loads the TOML or scans the folder; folder problems land in `findings`.
data::DataConfig load_data_source(DataSourceOptions& o, data::Findings& findings);


}  // namespace ls::cli
