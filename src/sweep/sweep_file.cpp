// Sweep files and their runs; see sweep_file.h.
#include "sweep/sweep_file.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include <toml++/toml.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/nearest_name.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "core/toml_value.h"
#include "sample/pipeline.h"

namespace fs = std::filesystem;

namespace ls::sweep {
namespace {

// Far more trainings than one comparison holds; past it a grid is a typo, planning it would take
// minutes, and the runs' 8-hex hashes would start to collide (~1e-4 at 1000 runs, 1% at 10000).
constexpr size_t kMaxSweepRuns = 1000;

/// One value of a grid axis or one key of a variant, as written in the file.
struct Setting {
  std::string key;
  core::KeyValue value;
  std::string where;  // file:line
  std::string text;   // the value as a person reads it (strings unquoted)
};

struct Variant {
  std::string name;
  std::vector<Setting> settings;
};

std::string plain(const core::KeyValue& v) {
  if (v.kind == core::KeyValue::Kind::kString) return v.text;
  if (v.kind == core::KeyValue::Kind::kFloat) return core::format_double(v.number);  // 5e-05, not 5.0000000000000002e-05
  if (v.kind == core::KeyValue::Kind::kArray) {
    std::string out;
    for (const auto& item : v.items) out += (out.empty() ? "" : " ") + plain(item);
    return out;
  }
  return v.shown;
}

Setting setting(const std::string& key, const toml::node& node, const std::string& file) {
  const core::KeyValue value = core::toml_value(node);
  return {key, value, core::toml_place(file, node), plain(value)};
}

/// Applies a setting; the config it lands in is a copy, so a bad value fails here, at its line.
void apply(train::TrainConfig& config, const Setting& s, const std::string& base_dir) {
  train::set_train_key(config, s.key, s.value, s.where, base_dir);
}

train::TrainConfig read_base(const toml::node& node, const std::string& file, const std::string& base_dir,
                             std::vector<std::string>& notes) {
  if (const auto* name = node.as_string()) {
    std::string path = name->get();
    if (fs::path(path).is_relative()) path = (fs::path(base_dir) / path).lexically_normal().string();
    return train::load_train_config(path, &notes);
  }
  const toml::table* table = node.as_table();
  LS_CHECK(table, core::toml_place(file, node), ": base must be a training TOML file name or a [base] table of training keys");
  train::TrainConfig config;
  for (const auto& [k, n] : *table) {
    const toml::table* section = n.as_table();  // kohya's one level of [sections]
    if (!section) {
      train::set_train_key(config, std::string(k.str()), core::toml_value(n), core::toml_place(file, n), base_dir, &notes);
      continue;
    }
    for (const auto& [k2, n2] : *section)
      train::set_train_key(config, std::string(k2.str()), core::toml_value(n2), core::toml_place(file, n2), base_dir, &notes);
  }
  return config;
}

std::vector<std::vector<Setting>> read_grid(const toml::table& grid, const train::TrainConfig& base, const std::string& file,
                                            const std::string& base_dir) {
  std::vector<std::vector<Setting>> axes;
  for (const auto& [k, node] : grid) {
    const std::string key(k.str());
    const std::string where = core::toml_place(file, node);
    const toml::array* values = node.as_array();
    LS_CHECK(values, where, ": grid key '", key, "' must be an array of values, e.g. ", key, " = [a, b]");
    LS_CHECK(!values->empty(), where, ": grid key '", key, "' has no values; give at least one");
    std::vector<Setting> axis;
    for (const toml::node& v : *values) {
      Setting s = setting(key, v, file);
      train::TrainConfig check = base;
      apply(check, s, base_dir);
      for (const Setting& other : axis)
        LS_CHECK(other.text != s.text, s.where, ": grid key '", key, "' lists ", s.value.shown, " twice");
      axis.push_back(std::move(s));
    }
    axes.push_back(std::move(axis));
  }
  return axes;
}

std::vector<Variant> read_variants(const toml::array& list, const train::TrainConfig& base, const std::string& file,
                                   const std::string& base_dir) {
  LS_CHECK(!list.empty(), file, ": variants is empty; add [[variants]] tables with a name, or drop the key");
  std::vector<Variant> out;
  for (const toml::node& node : list) {
    const toml::table* t = node.as_table();
    const std::string where = core::toml_place(file, node);
    LS_CHECK(t, where, ": each variant must be a table ([[variants]]) with a name and training keys");
    Variant v;
    const toml::node* name = t->get("name");
    LS_CHECK(name && name->is_string() && !name->as_string()->get().empty(), where,
             ": a variant needs a name (name = \"adafactor\"): it labels the run");
    v.name = name->as_string()->get();
    for (const Variant& other : out)
      LS_CHECK(other.name != v.name, core::toml_place(file, *name), ": variant name '", v.name, "' is used twice");
    train::TrainConfig check = base;
    for (const auto& [k, n] : *t) {
      if (k.str() == "name") continue;
      Setting s = setting(std::string(k.str()), n, file);
      apply(check, s, base_dir);
      v.settings.push_back(std::move(s));
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::string sanitized(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '+' || c == '-' || c == '_';
    if (keep) out += c;
    else if (!out.empty() && out.back() != '-' && (c == ' ' || c == '=' || c == ',' || c == '/')) out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

bool is_path_key(const std::string& key) {
  for (const auto& k : train::train_keys())
    if (k.name == key) return k.type == core::KeyType::kPath;
  return false;
}

std::string config_hash(train::TrainConfig config) {
  config.output_dir.clear();  // where the run lives and what runs it are not what it computes
  config.resume.clear();
  config.device.clear();      // --devices gives each worker its own
  return core::sha256_hex(train::train_config_toml(config)).substr(0, 8);
}

/// A non-empty [sheet] list whose items all pass `is` ("integers", "numbers", "strings").
template <typename T>
std::vector<T> list_of(const toml::node& node, const std::string& key, const std::string& file,
                       bool (toml::node::*is)() const noexcept, const char* what) {
  const toml::array* a = node.as_array();
  LS_CHECK(a && !a->empty(), core::toml_place(file, node), ": [sheet] ", key, " must be a non-empty list of ", what);
  std::vector<T> out;
  for (const toml::node& v : *a) {
    LS_CHECK((v.*is)(), core::toml_place(file, v), ": [sheet] ", key, " must hold ", what);
    out.push_back(*v.value<T>());
  }
  return out;
}

SweepSheetSpec read_sheet(const toml::table& table, const std::string& file, const std::string& base_dir) {
  SweepSheetSpec spec;
  spec.present = true;
  const auto positive = [&](const toml::node& n, const std::string& key) {
    LS_CHECK(n.is_integer() && *n.value<int64_t>() >= 1, core::toml_place(file, n), ": [sheet] ", key,
             " must be a positive integer");
    return *n.value<int64_t>();
  };
  for (const auto& [k, node] : table) {
    const std::string key(k.str());
    const std::string where = core::toml_place(file, node);
    if (key == "prompts") {
      spec.prompts = list_of<std::string>(node, key, file, &toml::node::is_string, "strings");
    } else if (key == "seeds") {
      spec.seeds = list_of<int64_t>(node, key, file, &toml::node::is_integer, "integers");
      // Checked here as the sampler would check each cell: after the runs trained is too late.
      for (int64_t seed : spec.seeds) LS_CHECK(seed >= 0, where, ": [sheet] seeds must be >= 0, got ", seed);
    } else if (key == "strengths") {
      spec.strengths = list_of<double>(node, key, file, &toml::node::is_number, "numbers");
      for (double s : spec.strengths)
        LS_CHECK(std::isfinite(s), where, ": [sheet] strengths must be finite numbers, got ", core::format_double(s));
    } else if (key == "epochs") {
      if (node.is_string()) {
        LS_CHECK(node.as_string()->get() == "all", where, ": [sheet] epochs is \"all\" or a list of epoch numbers");
      } else {
        spec.epochs = list_of<int64_t>(node, key, file, &toml::node::is_integer, "integers");
      }
    } else if (key == "every_n_epochs") {
      spec.every_n_epochs = positive(node, key);
    } else if (key == "last_n_epochs") {
      spec.last_n_epochs = positive(node, key);
    } else {
      core::KeyValue value = core::toml_value(node);
      const core::Key<sheet::SheetDefinition>* found = sheet::sheet_keys().find(key);
      if (found && found->type == core::KeyType::kPath && value.kind == core::KeyValue::Kind::kString &&
          !value.text.empty() && fs::path(value.text).is_relative())
        value = core::text_value((fs::path(base_dir) / value.text).lexically_normal().string());
      const std::vector<std::string> own = {"prompts", "seeds", "strengths", "epochs", "every_n_epochs", "last_n_epochs"};
      if (sheet::sheet_keys().apply(spec.settings, key, value, where + ": [sheet] " + key, nullptr, &found) ==
          core::Applied::kUnknown) {
        std::vector<std::string> names = sheet::sheet_keys().names();
        names.insert(names.end(), own.begin(), own.end());
        LS_FAIL(where, ": unknown [sheet] key '", key, "'", core::did_you_mean(key, names),
                "; see docs/sweep.md for the keys of [sheet]");
      }
      spec.given.push_back(found->name);
    }
  }
  if (spec.prompts.empty()) {
    LS_CHECK(!spec.settings.request.prompt.empty(), file, ": [sheet] has no prompts; add prompts = [\"...\"]");
    spec.prompts = {spec.settings.request.prompt};
  }
  if (spec.seeds.empty()) spec.seeds = {spec.settings.request.seed >= 0 ? spec.settings.request.seed : 0};
  for (size_t i = 0; i < spec.seeds.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      LS_CHECK(spec.seeds[i] != spec.seeds[j], file, ": [sheet] seeds lists ", spec.seeds[i], " twice");
  for (size_t i = 0; i < spec.strengths.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      LS_CHECK(spec.strengths[i] != spec.strengths[j], file, ": [sheet] strengths lists ",
               core::format_double(spec.strengths[i]), " twice");
  LS_CHECK(spec.epochs.empty() || (!spec.every_n_epochs && !spec.last_n_epochs), file,
           ": [sheet] epochs names the epochs; drop every_n_epochs / last_n_epochs, or epochs");
  sample::ImageRequest check = spec.settings.request;
  check.prompt = spec.prompts.front();
  try {
    sample::validate_request(check);
  } catch (const Error& e) {
    LS_FAIL(file, ": [sheet]: ", e.what());
  }
  return spec;
}

}  // namespace

std::string facet_value(const std::string& key, const std::string& shown) {
  double v = 0;
  if (is_path_key(key) || core::parse_double(shown, v)) return label_value(key, shown);
  return shown;
}

std::string label_key(const std::string& key) {
  static const std::map<std::string, std::string> short_names = {
      {"learning_rate", "lr"},        {"unet_lr", "unetlr"},        {"text_encoder_lr", "telr"},
      {"network_dim", "dim"},         {"network_alpha", "alpha"},   {"conv_dim", "convdim"},
      {"conv_alpha", "convalpha"},    {"optimizer_type", "opt"},    {"optimizer_args", "optargs"},
      {"lr_scheduler", "sched"},      {"max_train_epochs", "ep"},   {"max_train_steps", "steps"},
      {"train_batch_size", "bs"},     {"dataset_config", "data"},   {"pretrained_model_name_or_path", "model"},
      {"min_snr_gamma", "snr"},       {"noise_offset", "noise"},    {"network_dropout", "dropout"}};
  const auto it = short_names.find(key);
  return it == short_names.end() ? key : it->second;
}

std::string label_value(const std::string& key, const std::string& shown) {
  if (is_path_key(key)) return sanitized(fs::path(shown).stem().string());
  double v = 0;
  if (core::parse_double(shown, v) && v != 0 && std::abs(v) < 0.01) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6e", v);  // "1.000000e-04" -> "1e-4"
    std::string mantissa(buf, std::string(buf).find('e'));
    int exponent = std::atoi(std::string(buf).substr(mantissa.size() + 1).c_str());
    if (mantissa.find('.') != std::string::npos) {
      while (mantissa.back() == '0') mantissa.pop_back();
      if (mantissa.back() == '.') mantissa.pop_back();
    }
    return mantissa + "e" + std::to_string(exponent);
  }
  return sanitized(shown);
}

Sweep load_sweep(const std::string& path) {
  std::error_code ec;
  LS_CHECK(fs::is_regular_file(path, ec), path, ": sweep file not found; pass a sweep .toml (see docs/sweep.md)");
  return parse_sweep(core::read_file(path), path);
}

Sweep parse_sweep(std::string_view text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    LS_FAIL(path, ":", e.source().begin.line, ": TOML syntax error: ", e.description());
  }
  Sweep sweep;
  sweep.file = path;
  const std::string base_dir = fs::absolute(path).parent_path().string();
  const toml::node* base_node = nullptr;
  const toml::table* grid = nullptr;
  const toml::array* variant_list = nullptr;
  const toml::table* sheet_table = nullptr;
  for (const auto& [k, node] : root) {
    const std::string key(k.str());
    const std::string where = core::toml_place(path, node);
    if (key == "output_dir") {
      LS_CHECK(node.is_string(), where, ": output_dir must be a folder name");
      const fs::path dir(node.as_string()->get());
      sweep.output_dir = (dir.is_relative() ? fs::path(base_dir) / dir : dir).lexically_normal().string();
    } else if (key == "base") {
      base_node = &node;
    } else if (key == "grid") {
      grid = node.as_table();
      LS_CHECK(grid, where, ": grid must be a table ([grid]) of training keys, each with a list of values");
    } else if (key == "sheet") {
      sheet_table = node.as_table();
      LS_CHECK(sheet_table, where, ": sheet must be a table ([sheet]) saying how to compare the runs");
    } else if (key == "variants") {
      variant_list = node.as_array();
      LS_CHECK(variant_list, where, ": variants must be a list of tables ([[variants]])");
    } else {
      LS_FAIL(where, ": unknown sweep key '", key, "'",
              core::did_you_mean(key, {"output_dir", "base", "grid", "variants", "sheet"}),
              "; a sweep has output_dir, base, [grid], [[variants]] and [sheet] (training keys go in [base])");
    }
  }
  LS_CHECK(base_node, path, ": no base; set base = \"train.toml\" or add a [base] table of training keys");
  LS_CHECK(!sweep.output_dir.empty(), path, ": no output_dir; set output_dir = \"sweeps/name\" (the runs' folders)");
  const train::TrainConfig base = read_base(*base_node, path, base_dir, sweep.notes);
  if (sheet_table) sweep.sheet = read_sheet(*sheet_table, path, base_dir);
  const auto axes = grid ? read_grid(*grid, base, path, base_dir) : std::vector<std::vector<Setting>>{};
  const auto variants = variant_list ? read_variants(*variant_list, base, path, base_dir) : std::vector<Variant>{};
  for (const Variant& v : variants)
    for (const Setting& s : v.settings)
      for (const auto& axis : axes)
        LS_CHECK(axis.front().key != s.key, s.where, ": '", s.key, "' is set by variant '", v.name,
                 "' and by the grid; keep it in one place");

  for (const auto& axis : axes)
    if (axis.size() > 1) sweep.varied_keys.push_back(axis.front().key);
  if (!variants.empty()) sweep.varied_keys.push_back("variant");

  const std::vector<Variant> outer = variants.empty() ? std::vector<Variant>{Variant{}} : variants;
  double planned = static_cast<double>(outer.size());  // a double: the product must not wrap
  for (const auto& axis : axes) planned *= static_cast<double>(axis.size());
  LS_CHECK(planned <= kMaxSweepRuns, path, ": the grid and variants make ", core::format_double(planned),
           " runs, more than the ", kMaxSweepRuns, " one sweep takes; split it into several sweep files");
  size_t combos = 1;
  for (const auto& axis : axes) combos *= axis.size();
  std::map<std::string, std::string> by_hash;
  for (const Variant& variant : outer) {
    for (size_t c = 0; c < combos; ++c) {
      SweepRun run;
      run.index = sweep.runs.size();
      run.config = base;
      std::vector<std::string> parts;
      if (!variant.name.empty()) {
        parts.push_back(sanitized(variant.name));
        run.values.emplace_back("variant", variant.name);
      }
      for (const Setting& s : variant.settings) apply(run.config, s, base_dir);
      size_t rest = c;
      std::vector<size_t> pick(axes.size());
      for (size_t a = axes.size(); a-- > 0;) {  // the first axis varies slowest
        pick[a] = rest % axes[a].size();
        rest /= axes[a].size();
      }
      for (size_t a = 0; a < axes.size(); ++a) {
        const Setting& s = axes[a][pick[a]];
        apply(run.config, s, base_dir);
        if (axes[a].size() == 1) continue;
        run.values.emplace_back(s.key, s.text);
        parts.push_back(label_key(s.key) + label_value(s.key, s.text));
      }
      train::TrainConfig& cfg = run.config;
      if (!cfg.seed) cfg.seed = 0;
      if (!cfg.save_every_n_epochs && !cfg.save_every_n_steps) cfg.save_every_n_epochs = 1;
      cfg.save_state = true;
      run.label = parts.empty() ? "base" : "";
      for (const std::string& p : parts) run.label += (run.label.empty() ? "" : "_") + p;
      run.hash = config_hash(cfg);
      run.folder = (fs::path(sweep.output_dir) / (run.label + "-" + run.hash)).string();
      cfg.output_dir = run.folder;
      const auto [it, fresh] = by_hash.emplace(run.hash, run.label);
      LS_CHECK(fresh, path, ": runs ", it->second, " and ", run.label, " have the same effective config; drop one");
      try {
        train::validate(cfg);
      } catch (const Error& e) {
        LS_FAIL(path, ": run ", run.label, ": ", e.what());
      }
      sweep.runs.push_back(std::move(run));
    }
  }
  std::sort(sweep.notes.begin(), sweep.notes.end());
  sweep.notes.erase(std::unique(sweep.notes.begin(), sweep.notes.end()), sweep.notes.end());
  return sweep;
}

}  // namespace ls::sweep
