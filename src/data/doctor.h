// `lorastudio dataset check`: everything about a dataset that would waste or break a training run,
// found before the run: unreadable images, caption problems, duplicates, upscaled images, long
// captions, and the numbers a user plans with (images, repeats, steps per epoch, buckets).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"

namespace ls::data {

struct CheckOptions {
  int batch_size = 0;              // 0: each dataset's own batch_size
  std::string tokenizer;           // CLIP vocabulary: enables the 75/225-token caption check
  int near_duplicate_distance = 6;  // perceptual-hash Hamming distance counted as "near duplicate"
  bool show_progress = true;
};

struct SubsetReport {
  std::string image_dir;
  bool is_reg = false;
  int64_t images = 0;           // usable image files
  int num_repeats = 0;          // as configured
  int64_t images_per_epoch = 0;  // with repeats, after regularization balancing
  int64_t captions_from_files = 0;
};

struct BucketCount {
  Reso reso;
  int64_t images = 0;            // distinct images
  int64_t images_per_epoch = 0;  // with repeats
};

struct DatasetReport {
  int batch_size = 0;
  int64_t steps_per_epoch = 0;
  std::vector<SubsetReport> subsets;
  std::vector<BucketCount> buckets;
};

struct CheckReport {
  std::string source;
  std::vector<DatasetReport> datasets;
  int64_t steps_per_epoch = 0;
  Findings findings;
  bool ok() const { return count_findings(findings, Severity::kError) == 0; }
};

/// Runs every check on a loaded config (folder findings from loading come in `findings`).
CheckReport check_dataset(const DataConfig& config, Findings findings, const CheckOptions& options);

nlohmann::json report_json(const CheckReport& report);
std::string report_text(const CheckReport& report);

}  // namespace ls::data
