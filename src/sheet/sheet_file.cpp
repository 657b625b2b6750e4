// sheet.json: writing (the sheet runner) and validated reading (the review); see sheet_file.h.
#include "sheet/sheet_file.h"

#include <algorithm>
#include <set>
#include <system_error>

#include "core/atomic_file.h"
#include "core/error.h"

namespace ls::sheet {

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
    if (list[i].contains("facets")) {
      const auto& facets = sheet_member(list[i], "facets", kJsonArray, where, name);
      LS_CHECK(facets.size() == values.size(), name, ": ", where, "facets has ", facets.size(), " entries for ",
               values.size(), " values", kRegenerateSheet);
      for (size_t v = 0; v < facets.size(); ++v) {
        LS_CHECK(facets[v].is_object(), name, ": ", where, "facets[", v, "] must be an object", kRegenerateSheet);
        Facets f;
        for (const auto& [key, value] : facets[v].items()) {
          LS_CHECK(value.is_string() && !key.empty(), name, ": ", where, "facets[", v, "].", key,
                   " must be a string", kRegenerateSheet);
          f.emplace_back(key, value.get<std::string>());
        }
        axis.facets.push_back(std::move(f));
      }
    }
    axes.push_back(std::move(axis));
  }
  return axes;
}

void parse_sheet_figures(const nlohmann::json& doc, Sheet& sheet, const std::string& name) {
  if (!doc.contains("figures")) return;
  const auto& list = sheet_member(doc, "figures", kJsonArray, "", name);
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = str_cat("figures[", i, "].");
    LS_CHECK(list[i].is_object(), name, ": figures[", i, "] must be an object", kRegenerateSheet);
    SheetFigure f;
    f.title = sheet_member(list[i], "title", kJsonString, where, name).get<std::string>();
    f.image = sheet_member(list[i], "image", kJsonString, where, name).get<std::string>();
    LS_CHECK(is_safe_relative_path(f.image), name, ": ", where, "image '", f.image,
             "' is not a plain relative path inside the sheet folder", kRegenerateSheet);
    sheet.figures.push_back(std::move(f));
  }
}

void parse_sheet_pages(const nlohmann::json& doc, Sheet& sheet, const std::string& name) {
  if (!doc.contains("pages")) return;
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
    sheet.grids.push_back(grid);
    sheet.page_labels.push_back(
        list[i].contains("label") ? sheet_member(list[i], "label", kJsonString, where, name).get<std::string>() : "");
  }
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
    (std::string(key) == "width" ? cell.width : cell.height) = size;
  }
  if (item.contains("infotext")) cell.infotext = sheet_member(item, "infotext", kJsonString, where, name).get<std::string>();
  if (!item.contains("params")) return cell;
  const auto& params = sheet_member(item, "params", kJsonObject, where, name);
  cell.params = params;
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

bool looks_like_cell_id(const std::string& id) {
  return id.size() == 16 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

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
  LS_CHECK(format == kSheetFormat, name, ": format is '", format, "', expected '", kSheetFormat, "'",
           "; point `lorastudio review` at a folder written by `lorastudio sheet`");
  int version = sheet_member(doc, "version", kJsonInteger, "", name).get<int>();
  LS_CHECK(version == kSheetVersion, name, ": version ", version, " is not supported (this lorastudio reads version ",
           kSheetVersion, ")",
           "; update lorastudio or regenerate the sheet");
  Sheet sheet;
  if (doc.contains("title")) sheet.title = sheet_member(doc, "title", kJsonString, "", name).get<std::string>();
  sheet.doc = doc;
  sheet.axes = parse_sheet_axes(doc, name);
  parse_sheet_pages(doc, sheet, name);
  parse_sheet_figures(doc, sheet, name);
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

nlohmann::json sheet_document(const Sheet& sheet) {
  using nlohmann::json;
  json axes = json::array();
  for (const auto& a : sheet.axes) {
    json axis = {{"role", a.role}, {"kind", a.kind}, {"title", a.title}, {"values", a.values}};
    if (!a.facets.empty()) {
      json facets = json::array();
      for (const Facets& f : a.facets) {
        json one = json::object();
        for (const auto& [k, v] : f) one[k] = v;
        facets.push_back(std::move(one));
      }
      axis["facets"] = std::move(facets);
    }
    axes.push_back(std::move(axis));
  }
  json pages = json::array();
  for (size_t p = 0; p < sheet.grids.size(); ++p) {
    const std::string label = p < sheet.page_labels.size() ? sheet.page_labels[p] : "";
    pages.push_back({{"index", p}, {"label", label}, {"grid", sheet.grids[p]}});
  }
  json cells = json::array();
  for (const auto& c : sheet.cells) {
    json coords = json::object();
    for (const auto& [role, i] : c.coords) coords[role] = i;
    cells.push_back({{"id", c.id},
                     {"coords", coords},
                     {"image", c.image},
                     {"width", c.width},
                     {"height", c.height},
                     {"params", c.params},
                     {"infotext", c.infotext}});
  }
  json doc = {{"format", kSheetFormat}, {"version", kSheetVersion}, {"title", sheet.title},
              {"axes", axes},           {"pages", pages},             {"cells", cells}};
  if (!sheet.figures.empty()) {
    json figures = json::array();
    for (const auto& f : sheet.figures) figures.push_back({{"title", f.title}, {"image", f.image}});
    doc["figures"] = std::move(figures);
  }
  return doc;
}

void write_sheet(const std::filesystem::path& file, const Sheet& sheet) {
  core::write_file_atomic(file, sheet_document(sheet).dump(1) + "\n");
}

}  // namespace ls::sheet
