// The review's data: the sheet folder's sheet.json (read through sheet/sheet_file, as the runner
// writes it), the picks in selections.json (saved atomically after every change), and the summary of which
// LoRA file / strength / epoch / other axis value was picked most.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sheet/sheet_file.h"

namespace ls::review {

// sheet.json as the review reads it: one home, in sheet/.
using sheet::is_safe_relative_path;
using sheet::load_sheet;
using sheet::looks_like_cell_id;
using sheet::parse_sheet;
using sheet::Sheet;
using sheet::SheetAxis;
using sheet::SheetCell;

enum class CellState { kNone, kPicked, kRejected };
const char* state_name(CellState state);
/// "picked", "rejected" or "none" (or ""); anything else is an ls::Error naming `context`.
CellState parse_state(const std::string& text, const std::string& context);

/// A cell's choice. A cell with state none and no note is absent from selections.json; a note
/// on a cell that is neither picked nor rejected is kept with state "none".
struct Selection {
  CellState state = CellState::kNone;
  std::string note;
};
using Selections = std::map<std::string, Selection>;  // cell id -> choice

Selections parse_selections(const nlohmann::json& doc, const std::string& name_for_errors);
nlohmann::json selections_to_json(const Selections& selections);
/// A missing file means no selections; a corrupt one is an ls::Error saying to fix or delete it.
Selections load_selections(const std::filesystem::path& file);
/// temp file + rename, so a crash never leaves a half-written selections.json.
void save_selections(const std::filesystem::path& file, const Selections& selections);

/// Picks and rejections per value of one axis kind (or of epoch, from params.loras[].epoch).
struct SummaryValue {
  std::string value;
  int picked = 0;
  int rejected = 0;
};
struct SummaryGroup {
  std::string kind;   // sweep (one group per facet key), lora, strength, epoch, then the other axis kinds
  std::string title;
  std::vector<SummaryValue> values;  // most picked first; ties keep the axis order
};
struct Summary {
  int picked = 0, rejected = 0, noted = 0;  // over the cells of this sheet only
  std::vector<SummaryGroup> groups;
};
Summary summarize(const Sheet& sheet, const Selections& selections);
nlohmann::json summary_to_json(const Summary& summary);

/// A sheet folder under review. Not thread-safe: the server serialises calls.
class ReviewStore {
 public:
  /// Loads SHEETDIR/sheet.json and SHEETDIR/selections.json (absent = none).
  explicit ReviewStore(std::filesystem::path sheet_dir);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path sheet_file() const { return dir_ / "sheet.json"; }
  std::filesystem::path selections_file() const { return dir_ / "selections.json"; }
  const Sheet& sheet() const { return sheet_; }
  const Selections& selections() const { return selections_; }

  /// Re-reads sheet.json when its modification time changed (`lorastudio sheet` may still be
  /// adding cells); returns true when it did. A broken rewrite keeps the previous sheet.
  bool refresh_sheet();
  /// Sets a cell's state and note and saves selections.json; an unknown id is an ls::Error.
  void set(const std::string& cell_id, CellState state, const std::string& note);
  Summary summary() const { return summarize(sheet_, selections_); }

 private:
  std::filesystem::path dir_;
  Sheet sheet_;
  std::filesystem::file_time_type sheet_mtime_{};
  Selections selections_;
};

}  // namespace ls::review
