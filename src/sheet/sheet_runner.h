// Renders a contact sheet into its folder (docs/sheet-format.md): every cell image named by the
// content hash of what decides its pixels, so a re-run renders only cells whose parameters are
// new (an added seed, strength or epoch) and resumes an interrupted run; sheet.json after every
// cell; one labelled grid PNG per page at the end.
#pragma once

#include <cstdint>
#include <string>

#include "sheet/sheet_definition.h"

namespace ls::sheet {

struct SheetRunStats {
  int64_t cells = 0;     // in the sheet
  int64_t rendered = 0;  // newly rendered by this run
  int64_t reused = 0;    // found in cells/ with identical parameters
  double seconds = 0;
};

struct SheetRunOptions {
  bool progress = true;  // progress bar on stderr
};

SheetRunStats run_sheet(const SheetDefinition& spec, const SheetRunOptions& options = {});

/// Axis title shown on the grid and the page for a kind ("LoRA file", "LoRA strength", ...).
std::string axis_title(AxisKind kind);

}  // namespace ls::sheet
