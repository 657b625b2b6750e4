// sheet.json validation, selections.json load/save and the pick summary for `lorastudio review`.
// Formats: docs/sheet-format.md.
#include "review/review_store.h"

#include <algorithm>
#include <set>
#include <system_error>

#include "core/atomic_file.h"
#include "core/error.h"

namespace ls::review {

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

// Facets (sheet_file.h) are counted per key: a cell counts for the facet values of its value on
// each axis that has them (a sweep sheet: the run's learning_rate, network_dim, ...). Keys and
// values keep the order they first appear in.
std::vector<SummaryGroup> summarize_facets(const Sheet& sheet, const Selections& selections) {
  std::vector<SummaryGroup> groups;
  const auto group_of = [&](const std::string& key) -> SummaryGroup& {
    for (auto& g : groups)
      if (g.title == key) return g;
    groups.push_back({"sweep", key, {}});
    return groups.back();
  };
  const auto value_of = [](SummaryGroup& g, const std::string& value) -> SummaryValue& {
    for (auto& v : g.values)
      if (v.value == value) return v;
    g.values.push_back({value, 0, 0});
    return g.values.back();
  };
  for (const auto& axis : sheet.axes)
    for (const auto& facets : axis.facets)
      for (const auto& [key, value] : facets) value_of(group_of(key), value);
  for (const auto& cell : sheet.cells) {
    auto it = selections.find(cell.id);
    if (it == selections.end()) continue;
    for (const auto& axis : sheet.axes) {
      if (axis.facets.empty()) continue;
      for (const auto& [key, value] : axis.facets[static_cast<size_t>(cell.coords.at(axis.role))]) {
        auto& counts = value_of(group_of(key), value);
        counts.picked += it->second.state == CellState::kPicked;
        counts.rejected += it->second.state == CellState::kRejected;
      }
    }
  }
  for (auto& g : groups) sort_summary_values(g.values);
  return groups;
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
  summary.groups = summarize_facets(sheet, selections);
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
