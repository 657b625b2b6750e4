// sheet.json, the description of a sheet folder (docs/sheet-format.md): its types, the writer the
// sheet runner uses and the validating reader the review uses, so both sides agree by construction.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace ls::sheet {

inline constexpr const char* kSheetFormat = "lorastudio-sheet";
inline constexpr int kSheetVersion = 1;

/// What an axis value stands for beyond its label, as (key, value) pairs: a sweep's LoRA axis
/// gives each run's varied training values ("learning_rate" -> "1e-4"), and the review counts picks
/// per such value.
using Facets = std::vector<std::pair<std::string, std::string>>;

/// One axis of the sheet: role x (columns), y (rows), z (blocks) or page.
struct SheetAxis {
  std::string role, kind, title;
  std::vector<std::string> values;
  std::vector<Facets> facets;  // empty, or one per value
};

/// An image shown beside the grid (a sweep's loss curves), a file in the sheet folder.
struct SheetFigure {
  std::string title, image;
};

struct SheetCell {
  std::string id;                      // 16 hex digits
  std::map<std::string, int> coords;   // role -> index into that axis' values
  std::string image;                   // relative to the sheet folder, e.g. cells/<id>.png
  int width = 0, height = 0;           // pixels (0: not given)
  nlohmann::json params;               // the generation parameters (docs/sheet-format.md)
  std::string infotext;                // A1111's parameters text, as in the PNG
  std::vector<int> epochs;             // params.loras[].epoch, where present (read only)
};

/// A sheet.json: what the runner writes, or what passed validation (then `doc` is the file as
/// read, served as it is).
struct Sheet {
  nlohmann::json doc;
  std::string title;
  std::vector<SheetAxis> axes;
  std::vector<SheetCell> cells;
  std::vector<std::string> grids;        // pages[].grid
  std::vector<std::string> page_labels;  // pages[].label ("" without a page axis)
  std::vector<SheetFigure> figures;      // figures[] (optional)

  /// The cell with this id, or nullptr.
  const SheetCell* find(const std::string& id) const;
  /// The axis with this role, or nullptr.
  const SheetAxis* axis(const std::string& role) const;
};

/// Validates a parsed sheet.json; errors are ls::Error "<name>: <where> <what is wrong>; ...".
Sheet parse_sheet(const nlohmann::json& doc, const std::string& name_for_errors);
Sheet load_sheet(const std::filesystem::path& file);

/// The file's JSON (format, version, title, axes, pages, cells) and its atomic write.
nlohmann::json sheet_document(const Sheet& sheet);
void write_sheet(const std::filesystem::path& file, const Sheet& sheet);

/// A cell id: 16 lowercase hex digits (the start of a SHA-256).
bool looks_like_cell_id(const std::string& id);
/// True for "cells/x.png"-like paths: relative, '/'-separated, no '.', '..' or empty segments,
/// only [A-Za-z0-9._-] characters (so no percent-escapes, backslashes or drive letters).
bool is_safe_relative_path(const std::string& path);

}  // namespace ls::sheet
