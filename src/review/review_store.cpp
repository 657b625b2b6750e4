// sheet.json validation, selections.json load/save and the pick summary for `lorastudio review`.
// Formats: docs/sheet-format.md.
#include "review/review_store.h"

#include <algorithm>
#include <set>
#include <system_error>

#include "core/atomic_file.h"
#include "core/error.h"

namespace ls::review {

namespace {

const char* const kSheetRoles[] = {"x", "y", "z", "page"};
const char* const kRegenerateSheet = "; regenerate the sheet with `lorastudio sheet`";

int axis_role_rank(const std::string& role) {
  for (int i = 0; i < 4; ++i) {
    if (role == kSheetRoles[i]) return i;
  }
  return -1;
}

using JsonType = nlohmann::json::value_t;
constexpr JsonType kJsonString = JsonType::string;
constexpr JsonType kJsonArray = JsonType::array;
constexpr JsonType kJsonObject = JsonType::object;
constexpr JsonType kJsonInteger = JsonType::number_integer;

const char* json_type_word(JsonType type) {
  switch (type) {
    case kJsonString: return "string";
    case kJsonArray: return "array";
    case kJsonObject: return "object";
    case kJsonInteger: return "integer";
    default: return "value";
  }
}

// A required member of the given JSON type, or an error naming where it was looked for.
const nlohmann::json& sheet_member(const nlohmann::json& object, const std::string& key, JsonType type,
                                   const std::string& where, const std::string& name) {
  auto it = object.find(key);
  LS_CHECK(it != object.end(), name, ": ", where, key, " is missing", kRegenerateSheet);
  bool ok = it->type() == type || (type == kJsonInteger && it->is_number_unsigned());
  LS_CHECK(ok, name, ": ", where, key, " must be a", type == kJsonInteger || type == kJsonArray || type == kJsonObject ? "n " : " ",
           json_type_word(type), ", got ", it->type_name(), kRegenerateSheet);
  return *it;
}

bool looks_like_cell_id(const std::string& id) {
  return id.size() == 16 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::vector<SheetAxis> parse_sheet_axes(const nlohmann::json& doc, const std::string& name) {
  std::vector<SheetAxis> axes;
  if (!doc.contains("axes")) return axes;
  const auto& list = sheet_member(doc, "axes", kJsonArray, "", name);
  int last_rank = -1;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = str_cat("axes[", i, "].");
    LS_CHECK(list[i].is_object(), name, ": axes[", i, "] must be an object", kRegenerateSheet);
    SheetAxis axis;
    axis.role = sheet_member(list[i], "role", kJsonString, where, name).get<std::string>();
    int rank = axis_role_rank(axis.role);
    LS_CHECK(rank >= 0, name, ": ", where, "role '", axis.role, "' is not one of x, y, z, page", kRegenerateSheet);
    LS_CHECK(rank > last_rank, name, ": ", where, "role '", axis.role,
             "' is repeated or out of order (x, y, z, page, each at most once)", kRegenerateSheet);
    last_rank = rank;
    // Kinds are not limited to today's list: the summary treats an unknown kind like seed or prompt.
    axis.kind = sheet_member(list[i], "kind", kJsonString, where, name).get<std::string>();
    LS_CHECK(!axis.kind.empty(), name, ": ", where, "kind is empty", kRegenerateSheet);
    axis.title = list[i].contains("title") ? sheet_member(list[i], "title", kJsonString, where, name).get<std::string>()
                                           : axis.kind;
    const auto& values = sheet_member(list[i], "values", kJsonArray, where, name);
    LS_CHECK(!values.empty(), name, ": ", where, "values is empty", kRegenerateSheet);
    for (size_t v = 0; v < values.size(); ++v) {
      LS_CHECK(values[v].is_string(), name, ": ", where, "values[", v, "] must be a string, got ",
               values[v].type_name(), kRegenerateSheet);
      axis.values.push_back(values[v].get<std::string>());
    }
    axes.push_back(std::move(axis));
  }
  return axes;
}

std::vector<std::string> parse_sheet_pages(const nlohmann::json& doc, const Sheet& sheet, const std::string& name) {
  std::vector<std::string> grids;
  if (!doc.contains("pages")) return grids;
  const auto& list = sheet_member(doc, "pages", kJsonArray, "", name);
  const SheetAxis* page_axis = sheet.axis("page");
  size_t max_pages = page_axis ? page_axis->values.size() : 1;
  LS_CHECK(list.size() <= max_pages, name, ": pages has ", list.size(), " entries for ", max_pages,
           " page(s) of the axes", kRegenerateSheet);
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = str_cat("pages[", i, "].");
    LS_CHECK(list[i].is_object(), name, ": pages[", i, "] must be an object", kRegenerateSheet);
    int index = sheet_member(list[i], "index", kJsonInteger, where, name).get<int>();
    LS_CHECK(index == static_cast<int>(i), name, ": ", where, "index is ", index, ", expected ", i, kRegenerateSheet);
    std::string grid = sheet_member(list[i], "grid", kJsonString, where, name).get<std::string>();
    LS_CHECK(is_safe_relative_path(grid), name, ": ", where, "grid '", grid,
             "' is not a plain relative path inside the sheet folder", kRegenerateSheet);
    grids.push_back(grid);
  }
  return grids;
}

SheetCell parse_sheet_cell(const nlohmann::json& item, const Sheet& sheet, size_t i, const std::string& name) {
  std::string where = str_cat("cells[", i, "].");
  LS_CHECK(item.is_object(), name, ": cells[", i, "] must be an object", kRegenerateSheet);
  SheetCell cell;
  cell.id = sheet_member(item, "id", kJsonString, where, name).get<std::string>();
  LS_CHECK(looks_like_cell_id(cell.id), name, ": ", where, "id '", cell.id, "' is not 16 lowercase hex digits", kRegenerateSheet);
  const auto& coords = sheet_member(item, "coords", kJsonObject, where, name);
  for (const auto& axis : sheet.axes) {
    int index = sheet_member(coords, axis.role, kJsonInteger, where + "coords.", name).get<int>();
    LS_CHECK(index >= 0 && index < static_cast<int>(axis.values.size()), name, ": ", where, "coords.", axis.role,
             " = ", index, " is outside the ", axis.values.size(), " values of that axis", kRegenerateSheet);
    cell.coords[axis.role] = index;
  }
  for (const auto& [role, value] : coords.items()) {
    LS_CHECK(sheet.axis(role) != nullptr, name, ": ", where, "coords.", role, " names no axis of this sheet",
             kRegenerateSheet);
  }
  cell.image = sheet_member(item, "image", kJsonString, where, name).get<std::string>();
  LS_CHECK(is_safe_relative_path(cell.image), name, ": ", where, "image '", cell.image,
           "' is not a plain relative path inside the sheet folder", kRegenerateSheet);
  for (const char* key : {"width", "height"}) {
    if (!item.contains(key)) continue;
    int size = sheet_member(item, key, kJsonInteger, where, name).get<int>();
    LS_CHECK(size > 0, name, ": ", where, key, " must be positive, got ", size, kRegenerateSheet);
  }
  if (item.contains("infotext")) sheet_member(item, "infotext", kJsonString, where, name);
  if (!item.contains("params")) return cell;
  const auto& params = sheet_member(item, "params", kJsonObject, where, name);
  if (!params.contains("loras")) return cell;
  const auto& loras = sheet_member(params, "loras", kJsonArray, where + "params.", name);
  for (size_t l = 0; l < loras.size(); ++l) {
    std::string lora_where = str_cat(where, "params.loras[", l, "].");
    LS_CHECK(loras[l].is_object(), name, ": ", lora_where, " must be an object", kRegenerateSheet);
    if (!loras[l].contains("epoch")) continue;
    int epoch = sheet_member(loras[l], "epoch", kJsonInteger, lora_where, name).get<int>();
    if (std::find(cell.epochs.begin(), cell.epochs.end(), epoch) == cell.epochs.end()) cell.epochs.push_back(epoch);
  }
  return cell;
}

}  // namespace

const SheetCell* Sheet::find(const std::string& id) const {
  for (const auto& cell : cells) {
    if (cell.id == id) return &cell;
  }
  return nullptr;
}

const SheetAxis* Sheet::axis(const std::string& role) const {
  for (const auto& a : axes) {
    if (a.role == role) return &a;
  }
  return nullptr;
}

bool is_safe_relative_path(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string segment = path.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") return false;
    for (char c : segment) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                c == '_' || c == '-';
      if (!ok) return false;
    }
    start = end + 1;
  }
  return true;
}

Sheet parse_sheet(const nlohmann::json& doc, const std::string& name) {
  LS_CHECK(doc.is_object(), name, ": must be a JSON object", kRegenerateSheet);
  std::string format = sheet_member(doc, "format", kJsonString, "", name).get<std::string>();
  LS_CHECK(format == "lorastudio-sheet", name, ": format is '", format, "', expected 'lorastudio-sheet'",
           "; point `lorastudio review` at a folder written by `lorastudio sheet`");
  int version = sheet_member(doc, "version", kJsonInteger, "", name).get<int>();
  LS_CHECK(version == 1, name, ": version ", version, " is not supported (this lorastudio reads version 1)",
           "; update lorastudio or regenerate the sheet");
  if (doc.contains("title")) sheet_member(doc, "title", kJsonString, "", name);
  Sheet sheet;
  sheet.doc = doc;
  sheet.axes = parse_sheet_axes(doc, name);
  sheet.grids = parse_sheet_pages(doc, sheet, name);
  const auto& cells = sheet_member(doc, "cells", kJsonArray, "", name);
  std::set<std::string> ids;
  std::set<std::map<std::string, int>> seen_coords;
  for (size_t i = 0; i < cells.size(); ++i) {
    SheetCell cell = parse_sheet_cell(cells[i], sheet, i, name);
    LS_CHECK(ids.insert(cell.id).second, name, ": cells[", i, "].id ", cell.id, " appears twice", kRegenerateSheet);
    LS_CHECK(seen_coords.insert(cell.coords).second, name, ": cells[", i, "] (", cell.id,
             ") has the same coords as an earlier cell", kRegenerateSheet);
    sheet.cells.push_back(std::move(cell));
  }
  return sheet;
}

Sheet load_sheet(const std::filesystem::path& file) {
  std::error_code ec;
  LS_CHECK(std::filesystem::is_regular_file(file, ec), file.string(),
           ": not found; pass the folder `lorastudio sheet` wrote (it holds sheet.json and cells/)");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(core::read_file(file));
  } catch (const nlohmann::json::parse_error& e) {
    LS_FAIL(file.string(), ": not valid JSON (", e.what(), ")", kRegenerateSheet);
  }
  return parse_sheet(doc, file.string());
}

const char* state_name(CellState state) {
  switch (state) {
    case CellState::kPicked: return "picked";
    case CellState::kRejected: return "rejected";
    case CellState::kNone: break;
  }
  return "none";
}

CellState parse_state(const std::string& text, const std::string& context) {
  if (text == "picked") return CellState::kPicked;
  if (text == "rejected") return CellState::kRejected;
  if (text == "none" || text.empty()) return CellState::kNone;
  LS_FAIL(context, ": state '", text, "' is not one of picked, rejected, none");
}

Selections parse_selections(const nlohmann::json& doc, const std::string& name) {
  const std::string fix = "; fix it or delete it to start with no selections";
  LS_CHECK(doc.is_object(), name, ": must be a JSON object", fix);
  LS_CHECK(doc.value("format", "") == "lorastudio-selections", name,
           ": format must be 'lorastudio-selections'", fix);
  LS_CHECK(doc.contains("version") && doc["version"].is_number_integer() && doc["version"].get<int>() == 1, name,
           ": version must be 1", fix);
  LS_CHECK(doc.contains("cells") && doc["cells"].is_object(), name, ": cells must be an object of cell id -> choice",
           fix);
  Selections selections;
  for (const auto& [id, item] : doc["cells"].items()) {
    std::string where = str_cat(name, ": cells.", id);
    LS_CHECK(looks_like_cell_id(id), where, " is not a cell id (16 lowercase hex digits)", fix);
    LS_CHECK(item.is_object(), where, " must be an object {state, note}", fix);
    Selection s;
    LS_CHECK(item.contains("state") && item["state"].is_string(), where, ".state must be a string", fix);
    try {
      s.state = parse_state(item["state"].get<std::string>(), where);
    } catch (const Error& e) {
      LS_FAIL(e.what(), fix);
    }
    if (item.contains("note")) {
      LS_CHECK(item["note"].is_string(), where, ".note must be a string", fix);
      s.note = item["note"].get<std::string>();
    }
    if (s.state != CellState::kNone || !s.note.empty()) selections[id] = s;
  }
  return selections;
}

nlohmann::json selections_to_json(const Selections& selections) {
  nlohmann::json cells = nlohmann::json::object();
  for (const auto& [id, s] : selections) {
    if (s.state == CellState::kNone && s.note.empty()) continue;
    nlohmann::json item = {{"state", state_name(s.state)}};
    if (!s.note.empty()) item["note"] = s.note;
    cells[id] = std::move(item);
  }
  return {{"format", "lorastudio-selections"}, {"version", 1}, {"cells", std::move(cells)}};
}

Selections load_selections(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return {};
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(core::read_file(file));
  } catch (const nlohmann::json::parse_error& e) {
    LS_FAIL(file.string(), ": not valid JSON (", e.what(), "); fix it or delete it to start with no selections");
  }
  return parse_selections(doc, file.string());
}

void save_selections(const std::filesystem::path& file, const Selections& selections) {
  core::write_file_atomic(file, selections_to_json(selections).dump(2) + "\n");
}

namespace {

// Most picked first; among equal picks fewer rejections first; then the axis order.
void sort_summary_values(std::vector<SummaryValue>& values) {
  std::stable_sort(values.begin(), values.end(), [](const SummaryValue& a, const SummaryValue& b) {
    if (a.picked != b.picked) return a.picked > b.picked;
    return a.rejected < b.rejected;
  });
}

SummaryGroup summarize_axis(const Sheet& sheet, const SheetAxis& axis, const Selections& selections) {
  SummaryGroup group{axis.kind, axis.title, {}};
  for (const auto& value : axis.values) group.values.push_back({value, 0, 0});
  for (const auto& cell : sheet.cells) {
    auto it = selections.find(cell.id);
    if (it == selections.end()) continue;
    auto& counts = group.values[cell.coords.at(axis.role)];
    counts.picked += it->second.state == CellState::kPicked;
    counts.rejected += it->second.state == CellState::kRejected;
  }
  sort_summary_values(group.values);
  return group;
}

// Epochs come from params.loras[].epoch (kohya's -NNNNNN file suffix), so they are summarised
// even when the lora axis lists files of several runs.
SummaryGroup summarize_epochs(const Sheet& sheet, const Selections& selections) {
  std::set<int> epochs;
  for (const auto& cell : sheet.cells) epochs.insert(cell.epochs.begin(), cell.epochs.end());
  SummaryGroup group{"epoch", "epoch", {}};
  std::vector<int> order(epochs.begin(), epochs.end());
  for (int epoch : order) group.values.push_back({std::to_string(epoch), 0, 0});
  for (const auto& cell : sheet.cells) {
    auto it = selections.find(cell.id);
    if (it == selections.end()) continue;
    for (int epoch : cell.epochs) {
      auto& counts = group.values[std::lower_bound(order.begin(), order.end(), epoch) - order.begin()];
      counts.picked += it->second.state == CellState::kPicked;
      counts.rejected += it->second.state == CellState::kRejected;
    }
  }
  sort_summary_values(group.values);
  return group;
}

}  // namespace

Summary summarize(const Sheet& sheet, const Selections& selections) {
  Summary summary;
  for (const auto& cell : sheet.cells) {
    auto it = selections.find(cell.id);
    if (it == selections.end()) continue;
    summary.picked += it->second.state == CellState::kPicked;
    summary.rejected += it->second.state == CellState::kRejected;
    summary.noted += !it->second.note.empty();
  }
  for (const char* kind : {"lora", "strength"}) {
    for (const auto& axis : sheet.axes) {
      if (axis.kind == kind) summary.groups.push_back(summarize_axis(sheet, axis, selections));
    }
  }
  bool any_epoch = std::any_of(sheet.cells.begin(), sheet.cells.end(), [](const SheetCell& c) { return !c.epochs.empty(); });
  if (any_epoch) summary.groups.push_back(summarize_epochs(sheet, selections));
  for (const auto& axis : sheet.axes) {
    if (axis.kind != "lora" && axis.kind != "strength") summary.groups.push_back(summarize_axis(sheet, axis, selections));
  }
  return summary;
}

nlohmann::json summary_to_json(const Summary& summary) {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& group : summary.groups) {
    nlohmann::json values = nlohmann::json::array();
    for (const auto& v : group.values) values.push_back({{"value", v.value}, {"picked", v.picked}, {"rejected", v.rejected}});
    groups.push_back({{"kind", group.kind}, {"title", group.title}, {"values", std::move(values)}});
  }
  return {{"picked", summary.picked}, {"rejected", summary.rejected}, {"noted", summary.noted},
          {"groups", std::move(groups)}};
}

ReviewStore::ReviewStore(std::filesystem::path sheet_dir) : dir_(std::move(sheet_dir)) {
  std::error_code ec;
  LS_CHECK(std::filesystem::is_directory(dir_, ec), dir_.string(),
           ": not a folder; pass the folder `lorastudio sheet` wrote");
  sheet_ = load_sheet(sheet_file());
  sheet_mtime_ = std::filesystem::last_write_time(sheet_file(), ec);
  selections_ = load_selections(selections_file());
}

bool ReviewStore::refresh_sheet() {
  std::error_code ec;
  auto mtime = std::filesystem::last_write_time(sheet_file(), ec);
  if (ec || mtime == sheet_mtime_) return false;
  try {
    sheet_ = load_sheet(sheet_file());
  } catch (const Error&) {
    return false;  // a rewrite in progress or gone wrong: keep serving the last good sheet
  }
  sheet_mtime_ = mtime;
  return true;
}

void ReviewStore::set(const std::string& cell_id, CellState state, const std::string& note) {
  LS_CHECK(sheet_.find(cell_id) != nullptr, sheet_file().string(), ": no cell with id '", cell_id, "'");
  Selections next = selections_;
  if (state == CellState::kNone && note.empty()) {
    next.erase(cell_id);
  } else {
    next[cell_id] = Selection{state, note};
  }
  save_selections(selections_file(), next);  // memory changes only once the file is safe on disk
  selections_ = std::move(next);
}

}  // namespace ls::review
