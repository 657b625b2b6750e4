// The machine-readable record of a training run: one JSON line per optimizer step (step, epoch,
// loss, running average, lr per parameter group, seconds) and, at the end, a loss-curve PNG drawn
// from it. A resumed run first drops the lines past the step it resumes from, so the log always
// describes one uninterrupted history.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/line_log.h"

namespace ls::train {

struct StepRecord {
  int64_t step = 0;  // optimizer steps done, 1-based
  int epoch = 0;     // 1-based, as kohya prints it
  double loss = 0;   // this step's loss (mean over its micro-batches)
  double loss_avg = 0;  // running mean over the current epoch (kohya's "avr_loss")
  std::vector<double> lrs;  // per parameter group
  double seconds = 0;       // wall time of the step
  double loss_scale = 0;    // fp16 loss scaling: the scale the step's backward used (0: off)
  bool skipped = false;     // fp16: the optimizer step was skipped (non-finite gradients)
};

class TrainLog {
 public:
  /// Opens `path` for appending; lines with step > keep_through_step are removed first (resume).
  TrainLog(std::string path, int64_t keep_through_step);
  void append(const StepRecord& record);
  /// A line of another kind ("event": "start", "resume", "interrupt", "nonfinite_loss", "end"), with fields.
  void event(const std::string& json_object_text);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<core::LineLog> out_;
};

/// Every step record of a log file, in order (other lines skipped).
std::vector<StepRecord> read_step_records(const std::string& path);

/// Loss per step (thin) and its running mean over `window` steps (thick) on a white canvas with
/// axes and tick labels; written atomically as PNG.
void write_loss_curve(const std::string& png_path, const std::vector<StepRecord>& records, int width = 960,
                      int height = 540, int window = 25);

/// Several runs in one plot (a sweep): each run's running mean over `window` steps in its own
/// colour, and a legend of their labels. One series draws as write_loss_curve.
struct LossSeries {
  std::string label;
  std::vector<StepRecord> records;
};
void write_loss_curves(const std::string& png_path, const std::vector<LossSeries>& series, int width = 960,
                       int height = 540, int window = 25);

}  // namespace ls::train
