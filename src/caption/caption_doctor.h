// The dataset doctor's verdict on each image of a caption editor's folder: what `train` would
// refuse (the errors data::index_datasets finds, data::require_no_errors), and its displayed size.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace ls::caption {

class CaptionStore;

struct DoctorNote {
  bool refused = false;
  std::vector<std::string> problems;
  int width = 0, height = 0;
};

/// Every image folder of the store is one subset, not recursive; a linked folder that leads out
/// is not scanned. Images without a note were found usable (or not scanned).
std::map<std::string, DoctorNote> run_doctor(const CaptionStore& store, bool show_progress);

}  // namespace ls::caption
