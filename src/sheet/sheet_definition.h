// What a contact sheet varies: a base request (model, prompt, sampler, ... as for `sample`) and up
// to three axes plus pages, each over one kind of setting (A1111's X/Y/Z plot, extended with LoRA
// files, LoRA strength and base checkpoints). Read from a TOML file and/or command-line flags; the
// folder it produces is described in docs/sheet-format.md.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/key_table.h"
#include "sample/request.h"
#include "sheet/sheet_file.h"

namespace ls::sheet {

enum class AxisRole { kX, kY, kZ, kPage };
enum class AxisKind { kLora, kStrength, kPrompt, kSeed, kSampler, kSteps, kCfg, kModel, kVae };

const char* role_name(AxisRole role);  // "x", "y", "z", "page"
const char* kind_name(AxisKind kind);  // "lora", "strength", ...
AxisKind parse_kind(const std::string& name, const std::string& where);

struct Axis {
  AxisRole role = AxisRole::kX;
  AxisKind kind = AxisKind::kSeed;
  std::vector<std::string> values;  // as given (globs of LoRA/model files already expanded)
  std::vector<std::string> labels;  // what the grid and the review page show
  std::string title;                // "" = the kind's title (sheet_runner.h axis_title)
  /// Optional, one per value: what the value stands for (a sweep run's varied training values),
  /// written to sheet.json for the review's summary (sheet_file.h).
  std::vector<Facets> facets;
  /// lora axis only, optional, one per value: the checkpoint that value's cells are rendered on
  /// ("" = the sheet's model): a sweep whose runs train on different base models.
  std::vector<std::string> checkpoints;
};

/// An image in the sheet folder shown beside the grid on the review page (a sweep's loss curves).
struct Figure {
  std::string title, image;  // image: relative to the sheet folder
};

struct SheetDefinition {
  std::string title;
  std::string output_dir;
  sample::ModelSource model;    // checkpoint = the base model unless a model axis varies it (vae: a vae axis)
  sample::ImageRequest request; // loras: on every cell (a lora axis adds one more)
  std::vector<Axis> axes;       // sorted by role, at most one per role
  std::string cache_dir;        // file-hash cache; empty = a1111::user_cache_dir()
  bool paths = true;            // model/LoRA paths in the cells' PNG text (no_paths = true drops them)
  std::vector<Figure> figures;  // written by whoever made the sheet (the runner only lists them)
};

/// Reads a sheet TOML (top-level keys as the `sheet` flags, tables [x] [y] [z] [page] with
/// `kind` and `values`). Unknown keys are errors naming file:line and the nearest known key.
SheetDefinition load_sheet_toml(const std::string& path);
/// The same from the file's text; `path` names it in errors and relative paths resolve against its
/// folder (globs and LoRA/model values are still looked up on disk).
SheetDefinition parse_sheet_toml(std::string_view text, const std::string& path);

/// The top-level keys: the sheet's own, the request fields (sample/request.h) and the LoRAs on
/// every cell. The `sheet` command's flags are these keys.
const core::KeyTable<SheetDefinition>& sheet_keys();

/// Sets one top-level key from its text form (the flags use this too).
void set_sheet_key(SheetDefinition& spec, const std::string& key, const std::string& value, const std::string& where);

/// "kind=v1,v2,..." (values separated by '|' when any '|' is present, else by ','; prompts always
/// by '|'): sets the axis for role, replacing one given before.
void set_axis_flag(SheetDefinition& spec, AxisRole role, const std::string& text);

/// Sets an axis from values; expands globs for lora/model values, computes labels, checks values.
void set_axis(SheetDefinition& spec, AxisRole role, AxisKind kind, std::vector<std::string> values, const std::string& where);

/// The most cells one sheet may have (the product of its axes' sizes): 100k cells are days of
/// rendering on a GPU; more is a mistake (values pasted twice, a seed range) that would exhaust
/// memory before the first cell.
inline constexpr int64_t kMaxSheetCells = 100'000;

/// Checks the spec as a whole (output_dir set, a strength axis has a LoRA to act on, the cell
/// count within kMaxSheetCells, ...).
void validate(const SheetDefinition& spec);

/// One cell: its index on each present axis and the request and model it renders.
struct CellPlan {
  std::map<AxisRole, int64_t> coords;
  sample::ImageRequest request;
  std::string checkpoint;
  std::string vae;  // "" = the checkpoint's own
};

/// Every cell, pages outermost then z, y, x (the order they are laid out).
std::vector<CellPlan> plan_cells(const SheetDefinition& spec);

/// kohya's epoch suffix of a LoRA file name ("name-000005.safetensors" -> 5), or -1.
int64_t epoch_of(const std::string& lora_path);
/// The training epoch of a LoRA file: its name's suffix, else its ss_epoch metadata (a run's final
/// file has no suffix), else -1.
int64_t lora_file_epoch(const std::string& lora_path);

}  // namespace ls::sheet
