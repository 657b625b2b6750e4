// One comparison of a sweep's runs: a contact sheet (sheet/) whose LoRA axis is every run's chosen
// epochs, labelled by the run's varied values, with those values as facets so that the review
// counts picks per sweep value; plus all runs' loss curves in one plot beside it. Built from what
// is on disk, so it can be made at any time: a run or epoch added since renders only its new
// cells (the sheet's content-hash reuse).
#pragma once

#include <string>
#include <vector>

#include "sheet/sheet_definition.h"
#include "sheet/sheet_runner.h"
#include "sweep/sweep_file.h"

namespace ls::sweep {

/// A run's LoRA files on disk, by epoch (its -NNNNNN files and the final one, whose epoch is its
/// ss_epoch metadata), oldest first.
struct RunLora {
  int64_t epoch = 0;
  std::string path;
};
std::vector<RunLora> run_loras(const SweepRun& run);

struct SweepSheetPlan {
  sheet::SheetDefinition definition;
  int64_t runs = 0;                // runs with at least one chosen LoRA file
  std::vector<std::string> notes;  // runs left out (nothing trained yet)
};

/// The sheet: y = each run's chosen epochs (run-major), then the strengths, seeds and prompts that
/// have more than one value on x, z and page in that order. Needs a [sheet] table and one trained
/// epoch; otherwise an ls::Error saying what to do.
SweepSheetPlan plan_sweep_sheet(const Sweep& sweep);

/// Every run's training log as one labelled plot (train::write_loss_curves); false when no run has
/// logged a step yet.
bool write_sweep_loss_curves(const Sweep& sweep, const std::string& png_path);

/// Plans the sheet, writes the loss curves into its folder (a figure of the sheet) and renders it.
struct SweepSheetResult {
  sheet::SheetRunStats stats;
  std::string folder;              // the sheet folder (for `lorastudio review`)
  std::vector<std::string> notes;  // runs left out
};
SweepSheetResult render_sweep_sheet(const Sweep& sweep, const sheet::SheetRunOptions& options = {});

}  // namespace ls::sweep
