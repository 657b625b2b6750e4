// Sheet definitions from TOML and flags; see sheet_definition.h.
#include "sheet/sheet_definition.h"

#include <algorithm>
#include <filesystem>
#include <fnmatch.h>

#include <toml++/toml.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/key_table.h"
#include "core/nearest_name.h"
#include "core/runtime.h"
#include "core/strings.h"
#include "models/model_prediction.h"
#include "io/safetensors.h"
#include "lora/lora_arg.h"

namespace fs = std::filesystem;

namespace ls::sheet {

namespace {

const std::vector<std::string>& kind_names() {
  static const std::vector<std::string> names = {"lora", "strength", "prompt", "seed",
                                                 "sampler", "steps", "cfg", "model", "vae"};
  return names;
}

bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

/// Files matching a pattern whose wildcards are in the file name only, sorted by name.
std::vector<std::string> expand_glob(const std::string& pattern, const std::string& where) {
  const fs::path p(pattern);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  LS_CHECK(!has_glob(dir.string()), where, ": '", pattern, "': wildcards are only allowed in the file name");
  std::vector<std::string> out;
  std::error_code ec;
  // error_code forms throughout: a folder that cannot be read is this function's error, not an exception.
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code entry_ec;
    if (!it->is_regular_file(entry_ec)) continue;
    const std::string name = it->path().filename().string();
    if (fnmatch(p.filename().c_str(), name.c_str(), 0) == 0) {
      out.push_back(p.has_parent_path() ? (dir / name).string() : name);
    }
  }
  LS_CHECK(!ec, where, ": cannot list ", dir.string(), " for '", pattern, "': ", ec.message());
  LS_CHECK(!out.empty(), where, ": no file matches '", pattern, "'; check the folder and the pattern");
  std::sort(out.begin(), out.end());
  return out;
}

std::string file_label(const std::string& path) { return fs::path(path).stem().string(); }

std::vector<std::string> split_values(const std::string& text, AxisKind kind) {
  const char sep = (kind == AxisKind::kPrompt || text.find('|') != std::string::npos) ? '|' : ',';
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    out.push_back(core::trim(text.substr(start, end == std::string::npos ? std::string::npos : end - start)));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

std::string node_text(const toml::node& node, const std::string& where) {
  if (auto s = node.value<std::string>()) return *s;
  if (node.is_integer()) return std::to_string(*node.value<int64_t>());
  if (node.is_floating_point()) return core::format_double(*node.value<double>());
  if (auto b = node.value<bool>()) return *b ? "true" : "false";
  LS_FAIL(where, ": expected a string or a number");
}

/// Paths in a TOML are relative to the TOML's folder, as in the training and dataset TOMLs.
std::string relative_to(const fs::path& base, const std::string& value) {
  if (value.empty() || fs::path(value).is_absolute()) return value;
  return (base / value).lexically_normal().string();
}

std::string place(const std::string& path, const toml::node& node) {
  return path + ":" + std::to_string(node.source().begin.line);
}

}  // namespace

const char* role_name(AxisRole role) {
  switch (role) {
    case AxisRole::kX: return "x";
    case AxisRole::kY: return "y";
    case AxisRole::kZ: return "z";
    case AxisRole::kPage: return "page";
  }
  return "?";
}

const char* kind_name(AxisKind kind) { return kind_names()[static_cast<size_t>(kind)].c_str(); }

AxisKind parse_kind(const std::string& name, const std::string& where) {
  const std::string n = core::ascii_lower(core::trim(name));
  const auto& names = kind_names();
  const auto it = std::find(names.begin(), names.end(), n);
  if (it != names.end()) return static_cast<AxisKind>(it - names.begin());
  LS_FAIL(where, ": unknown axis kind '", name, "'", core::did_you_mean(n, names),
          " (kinds: lora, strength, prompt, seed, sampler, steps, cfg, model, vae)");
}

const core::KeyTable<SheetDefinition>& sheet_keys() {
  using core::field_key;
  using Key = core::Key<SheetDefinition>;
  using D = SheetDefinition;
  using M = sample::ModelSource;
  static const core::KeyTable<SheetDefinition> table = [] {
    const auto path = [](Key k) {
      k.type = core::KeyType::kPath;
      return k;
    };
    const auto custom = [](const char* name, const char* help, std::function<void(D&, const std::string&)> set) {
      Key k;
      k.name = name;
      k.help = help;
      k.set = [set](D& d, const core::KeyValue& v, const std::string& subject) {
        std::string text;
        core::read_value(v, subject, text);
        set(d, text);
      };
      return k;
    };
    Key output_dir = path(field_key("output_dir", &D::output_dir, "Sheet folder (cells/, sheet.json, grid PNGs)"));
    output_dir.aliases = {"out"};
    std::vector<Key> keys = {
        field_key("title", &D::title, "Title drawn on the grid"),
        output_dir,
        path(field_key("model", &D::model, &M::checkpoint, "SDXL checkpoint or diffusers folder")),
        path(field_key("vae", &D::model, &M::vae, "Separate VAE for every cell (a vae axis varies it)")),
        path(field_key("model_config", &D::model, &M::config, "Architecture JSON for models without lorastudio metadata")),
        path(field_key("tokenizer", &D::model, &M::tokenizer, "CLIP BPE vocabulary or tokenizer folder")),
        custom("prediction", "auto (what each model says), epsilon, v, v_zsnr", [](D& d, const std::string& v) {
          models::check_prediction_choice(v);
          d.model.prediction = v;
        }),
        custom("device", "cpu, cuda, ...", [](D& d, const std::string& v) { d.model.device = core::parse_device(v); }),
        custom("dtype", "fp32, fp16, bf16", [](D& d, const std::string& v) { d.model.dtype = core::parse_dtype(v); }),
    };
    for (const sample::RequestField& f : sample::request_fields()) keys.push_back(core::part_key(f.key, &D::request));
    keys.push_back(custom("loras", "LoRAs on every cell, FILE[:strength] separated by '|'", [](D& d, const std::string& v) {
      d.request.loras.clear();
      for (const auto& item : split_values(v, AxisKind::kLora)) {
        if (item.empty()) continue;
        const auto [file, strength] = lora::parse_lora_arg(item);
        d.request.loras.push_back({file, strength});
      }
    }));
    keys.push_back(path(field_key("cache_dir", &D::cache_dir, "File-hash cache folder")));
    Key no_paths;
    no_paths.name = "no_paths";
    no_paths.type = core::KeyType::kBool;
    no_paths.help = "Leave model and LoRA file paths out of the cells' PNG text";
    no_paths.set = [](D& d, const core::KeyValue& v, const std::string& subject) {
      bool off = false;
      core::read_value(v, subject, off);
      d.paths = !off;
    };
    keys.push_back(no_paths);
    return core::KeyTable<SheetDefinition>(std::move(keys));
  }();
  return table;
}

void set_sheet_key(SheetDefinition& spec, const std::string& key, const std::string& value, const std::string& where) {
  if (sheet_keys().apply(spec, key, core::text_value(value), where + ": " + key, nullptr) == core::Applied::kUnknown)
    LS_FAIL(where, ": unknown sheet key '", key, "'", sheet_keys().did_you_mean(key));
}

void set_axis(SheetDefinition& spec, AxisRole role, AxisKind kind, std::vector<std::string> values, const std::string& where) {
  Axis axis{role, kind, {}, {}, {}, {}, {}};
  for (auto& v : values) {
    v = core::trim(v);
    if ((kind == AxisKind::kLora || kind == AxisKind::kModel || kind == AxisKind::kVae) && has_glob(v)) {
      for (auto& f : expand_glob(v, where)) axis.values.push_back(f);
    } else {
      axis.values.push_back(v);
    }
  }
  LS_CHECK(!axis.values.empty(), where, ": axis ", role_name(role), " (", kind_name(kind), ") has no values");
  for (const auto& v : axis.values) {
    std::error_code ec;  // a name the system refuses (too long, ...) is "not found", not an exception
    switch (kind) {
      case AxisKind::kLora:
        LS_CHECK(fs::is_regular_file(v, ec), where, ": ", v, ": file not found (", kind_name(kind), " axis)");
        axis.labels.push_back(file_label(v));
        break;
      case AxisKind::kModel:
      case AxisKind::kVae:  // files or diffusers folders
        LS_CHECK(fs::exists(v, ec), where, ": ", v, ": not found (", kind_name(kind), " axis)");
        axis.labels.push_back(file_label(fs::path(v).lexically_normal().filename().empty()
                                             ? fs::path(v).lexically_normal().parent_path().string() : v));
        break;
      case AxisKind::kStrength:
      case AxisKind::kCfg:
        axis.labels.push_back(core::format_double(core::number_or_fail(v, where + ": " + kind_name(kind))));
        break;
      case AxisKind::kSeed:
      case AxisKind::kSteps:
        axis.labels.push_back(std::to_string(core::int64_or_fail(v, where + ": " + kind_name(kind))));
        break;
      case AxisKind::kPrompt:
      case AxisKind::kSampler:
        LS_CHECK(kind == AxisKind::kPrompt || !v.empty(), where, ": empty sampler name on the ", role_name(role), " axis");
        axis.labels.push_back(v);
        break;
    }
  }
  for (size_t i = 0; i < axis.labels.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      LS_CHECK(axis.labels[i] != axis.labels[j] || axis.values[i] != axis.values[j], where, ": axis ", role_name(role),
               " lists '", axis.values[i], "' twice");
    }
  }
  spec.axes.erase(std::remove_if(spec.axes.begin(), spec.axes.end(), [&](const Axis& a) { return a.role == role; }),
                  spec.axes.end());
  spec.axes.push_back(std::move(axis));
  std::sort(spec.axes.begin(), spec.axes.end(), [](const Axis& a, const Axis& b) { return a.role < b.role; });
}

void set_axis_flag(SheetDefinition& spec, AxisRole role, const std::string& text) {
  const std::string where = std::string("--") + role_name(role);
  const size_t eq = text.find('=');
  LS_CHECK(eq != std::string::npos, where, " '", text, "': expected KIND=VALUES, e.g. ", where,
           " strength=0.5,0.75,1 or ", where, " \"lora=out/name-*.safetensors\"");
  const AxisKind kind = parse_kind(text.substr(0, eq), where);
  set_axis(spec, role, kind, split_values(text.substr(eq + 1), kind), where);
}

SheetDefinition load_sheet_toml(const std::string& path) {
  std::error_code ec;
  LS_CHECK(fs::is_regular_file(path, ec), path, ": sheet definition not found; pass a sheet .toml");
  return parse_sheet_toml(core::read_file(path), path);
}

SheetDefinition parse_sheet_toml(std::string_view text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    LS_FAIL(path, ":", e.source().begin.line, ": ", e.description(), "; fix the TOML syntax");
  }
  SheetDefinition spec;
  const fs::path base = fs::path(path).parent_path();
  for (const auto& [k, node] : root) {
    const std::string key(k.str());
    const std::string where = place(path, node);
    if (key == "x" || key == "y" || key == "z" || key == "page") {
      const auto* table = node.as_table();
      LS_CHECK(table, where, ": [", key, "] must be a table with kind and values");
      std::string kind;
      std::vector<std::string> values;
      for (const auto& [ak, an] : *table) {
        const std::string akey(ak.str());
        if (akey == "kind") {
          kind = node_text(an, place(path, an));
        } else if (akey == "values") {
          const auto* arr = an.as_array();
          LS_CHECK(arr, place(path, an), ": values must be an array");
          for (const auto& v : *arr) values.push_back(node_text(v, place(path, v)));
        } else {
          LS_FAIL(place(path, an), ": unknown key '", akey, "' in [", key, "]; use kind and values");
        }
      }
      LS_CHECK(!kind.empty(), where, ": [", key, "] has no kind");
      const AxisRole role = key == "x" ? AxisRole::kX : key == "y" ? AxisRole::kY : key == "z" ? AxisRole::kZ : AxisRole::kPage;
      const AxisKind axis_kind = parse_kind(kind, where);
      if (axis_kind == AxisKind::kLora || axis_kind == AxisKind::kModel || axis_kind == AxisKind::kVae) {
        for (auto& v : values) v = relative_to(base, v);
      }
      set_axis(spec, role, axis_kind, values, where);
    } else if (key == "loras" && node.is_array()) {
      std::string joined;
      for (const auto& v : *node.as_array()) joined += (joined.empty() ? "" : "|") + relative_to(base, node_text(v, where));
      set_sheet_key(spec, key, joined, where);
    } else {
      const std::string text = node_text(node, where);
      const core::Key<SheetDefinition>* k = sheet_keys().find(key);
      set_sheet_key(spec, key, k && k->type == core::KeyType::kPath ? relative_to(base, text) : text, where);
    }
  }
  return spec;
}

void validate(const SheetDefinition& spec) {
  LS_CHECK(!spec.output_dir.empty(), "sheet: no output folder; pass --out DIR or set output_dir in the TOML");
  const auto has = [&](AxisKind kind) {
    return std::any_of(spec.axes.begin(), spec.axes.end(), [&](const Axis& a) { return a.kind == kind; });
  };
  const auto count = [&](AxisKind kind) {
    return std::count_if(spec.axes.begin(), spec.axes.end(), [&](const Axis& a) { return a.kind == kind; });
  };
  for (auto kind : {AxisKind::kLora, AxisKind::kStrength, AxisKind::kPrompt, AxisKind::kSeed, AxisKind::kSampler,
                    AxisKind::kSteps, AxisKind::kCfg, AxisKind::kModel, AxisKind::kVae}) {
    LS_CHECK(count(kind) <= 1, "sheet: two axes vary ", kind_name(kind), "; use one axis per kind");
  }
  LS_CHECK(!has(AxisKind::kStrength) || has(AxisKind::kLora) || !spec.request.loras.empty(),
           "sheet: a strength axis needs a LoRA to act on; add a lora axis or --lora FILE");
  LS_CHECK(has(AxisKind::kModel) || !spec.model.checkpoint.empty(), "sheet: no base model; pass --model FILE");
  // The cells multiply: four axes of 60 values are 13 M cells (years of rendering, and more memory
  // for their plans than a machine has), from a 1 kB file.
  int64_t cells = 1;  // stops growing once past the limit, so it cannot overflow
  std::string sizes;
  for (const Axis& a : spec.axes) {
    cells = std::min<int64_t>(cells * static_cast<int64_t>(std::min<size_t>(a.values.size(), kMaxSheetCells + 1)),
                              kMaxSheetCells + 1);
    sizes += str_cat(sizes.empty() ? "" : " x ", a.values.size());
  }
  LS_CHECK(cells <= kMaxSheetCells, "sheet: axes of ", sizes, " values make more than ", kMaxSheetCells,
           " cells; use fewer values or split it into several sheets");
  for (const Axis& a : spec.axes) {
    LS_CHECK(a.facets.empty() || a.facets.size() == a.values.size(), "sheet: axis ", role_name(a.role), " has ",
             a.facets.size(), " facets for ", a.values.size(), " values");
    LS_CHECK(a.checkpoints.empty() || (a.kind == AxisKind::kLora && a.checkpoints.size() == a.values.size()),
             "sheet: per-value checkpoints belong to a lora axis, one per value");
    LS_CHECK(a.checkpoints.empty() || !has(AxisKind::kModel),
             "sheet: a lora axis with its own checkpoints and a model axis cannot both choose the model");
  }
}

std::vector<CellPlan> plan_cells(const SheetDefinition& spec) {
  validate(spec);
  std::vector<const Axis*> by_role(4, nullptr);
  for (const auto& a : spec.axes) by_role[static_cast<size_t>(a.role)] = &a;
  const auto size = [&](AxisRole r) {
    const Axis* a = by_role[static_cast<size_t>(r)];
    return a ? static_cast<int64_t>(a->values.size()) : int64_t{1};
  };
  // LoRA files first, so that a strength axis finds the LoRA it acts on.
  std::vector<const Axis*> order(by_role.begin(), by_role.end());
  std::stable_sort(order.begin(), order.end(), [](const Axis* a, const Axis* b) {
    return (a && a->kind == AxisKind::kLora) > (b && b->kind == AxisKind::kLora);
  });
  const bool lora_axis = std::any_of(spec.axes.begin(), spec.axes.end(),
                                     [](const Axis& ax) { return ax.kind == AxisKind::kLora; });
  std::vector<CellPlan> cells;
  for (int64_t p = 0; p < size(AxisRole::kPage); ++p)
    for (int64_t z = 0; z < size(AxisRole::kZ); ++z)
      for (int64_t y = 0; y < size(AxisRole::kY); ++y)
        for (int64_t x = 0; x < size(AxisRole::kX); ++x) {
          CellPlan cell{{}, spec.request, spec.model.checkpoint, spec.model.vae};
          const int64_t index[4] = {x, y, z, p};
          for (const Axis* a : order) {
            if (!a) continue;
            const int64_t i = index[static_cast<size_t>(a->role)];
            cell.coords[a->role] = i;
            const std::string& v = a->values[static_cast<size_t>(i)];
            auto& r = cell.request;
            switch (a->kind) {
              case AxisKind::kLora:
                r.loras.push_back({v, 1.0});
                if (!a->checkpoints.empty() && !a->checkpoints[static_cast<size_t>(i)].empty())
                  cell.checkpoint = a->checkpoints[static_cast<size_t>(i)];
                break;
              case AxisKind::kStrength: {
                const double s = core::number_or_fail(v, "sheet: strength");
                if (lora_axis) {
                  r.loras.back().strength = s;
                } else {
                  for (auto& l : r.loras) l.strength = s;
                }
                break;
              }
              case AxisKind::kPrompt: r.prompt = v; break;
              case AxisKind::kSeed: r.seed = core::int64_or_fail(v, "sheet: seed"); break;
              case AxisKind::kSampler: r.sampler = v; r.schedule_type.clear(); break;  // request.h: a sampler brings its schedule
              case AxisKind::kSteps: r.steps = core::int64_or_fail(v, "sheet: steps"); break;
              case AxisKind::kCfg: r.cfg_scale = core::number_or_fail(v, "sheet: cfg"); break;
              case AxisKind::kModel: cell.checkpoint = v; break;
              case AxisKind::kVae: cell.vae = v; break;
            }
          }
          cells.push_back(std::move(cell));
        }
  return cells;
}

int64_t epoch_of(const std::string& lora_path) {
  const std::string stem = fs::path(lora_path).stem().string();
  const size_t dash = stem.rfind('-');
  if (dash == std::string::npos || stem.size() - dash - 1 != 6) return -1;
  int64_t e = 0;
  return core::parse_int64(stem.substr(dash + 1), e) ? e : -1;
}

int64_t lora_file_epoch(const std::string& lora_path) {
  if (const int64_t e = epoch_of(lora_path); e >= 0) return e;
  const io::SafetensorsReader reader(lora_path);
  const auto& meta = reader.metadata();
  const auto it = meta.find("ss_epoch");
  int64_t e = -1;
  return it != meta.end() && core::parse_int64(it->second, e) ? e : -1;
}

}  // namespace ls::sheet
