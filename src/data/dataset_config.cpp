// kohya dataset TOML and folder convention -> DataConfig. The key table below is the single list
// of what lorastudio understands; kohya keys it does not implement are accepted only at their
// neutral value, so a config written for kohya either means the same here or is refused.
#include "data/dataset_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include <toml++/toml.h>

#include "core/error.h"
#include "core/nearest_name.h"

namespace fs = std::filesystem;

namespace ls::data {
namespace {

// Where a key may appear: kSubsetOnly keys only in [[datasets.subsets]]; kSubset keys at any
// level (nearest wins); kDataset keys in [general] or [[datasets]].
enum class Level { kSubsetOnly, kSubset, kDataset };

struct Place {
  std::string source;  // file name
  std::string table;   // "[general]", "[[datasets]] #1", ...
  std::string where(const toml::node& node) const {
    return str_cat(source, ":", node.source().begin.line, ": ", table);
  }
};

struct Target {
  SubsetConfig* subset = nullptr;
  DatasetConfig* dataset = nullptr;
};

using Setter = std::function<void(Target, const toml::node&, const std::string& key, const Place&)>;

struct KeyDef {
  const char* name;
  Level level;
  Setter set;
};

bool read_bool(const toml::node& n, const std::string& key, const Place& p) {
  LS_CHECK(n.is_boolean(), p.where(n), ": '", key, "' must be true or false");
  return *n.value<bool>();
}

int64_t read_int(const toml::node& n, const std::string& key, const Place& p) {
  LS_CHECK(n.is_integer(), p.where(n), ": '", key, "' must be an integer");
  return *n.value<int64_t>();
}

double read_number(const toml::node& n, const std::string& key, const Place& p) {
  LS_CHECK(n.is_integer() || n.is_floating_point(), p.where(n), ": '", key, "' must be a number");
  return n.is_integer() ? static_cast<double>(*n.value<int64_t>()) : *n.value<double>();
}

std::string read_string(const toml::node& n, const std::string& key, const Place& p) {
  LS_CHECK(n.is_string(), p.where(n), ": '", key, "' must be a string");
  return *n.value<std::string>();
}

double read_rate(const toml::node& n, const std::string& key, const Place& p) {
  const double r = read_number(n, key, p);
  LS_CHECK(r >= 0 && r <= 1, p.where(n), ": '", key, "' must be in [0, 1], got ", r);
  return r;
}

int read_positive(const toml::node& n, const std::string& key, const Place& p, int64_t min) {
  const int64_t v = read_int(n, key, p);
  LS_CHECK(v >= min && v <= 1'000'000, p.where(n), ": '", key, "' must be at least ", min, ", got ", v);
  return static_cast<int>(v);
}

// kohya's `resolution`: one integer (square) or [width, height].
Reso read_resolution(const toml::node& n, const std::string& key, const Place& p) {
  if (n.is_integer()) {
    const int v = read_positive(n, key, p, 64);
    return {v, v};
  }
  const toml::array* a = n.as_array();
  LS_CHECK(a && a->size() == 2 && (*a)[0].is_integer() && (*a)[1].is_integer(), p.where(n), ": '", key,
           "' must be an integer or [width, height]");
  return {read_positive((*a)[0], key, p, 64), read_positive((*a)[1], key, p, 64)};
}

#define LS_SUBSET(expr) [](Target t, const toml::node& n, const std::string& k, const Place& p) { \
    (void)k; (void)p; t.subset->expr; }
#define LS_DATASET(expr) [](Target t, const toml::node& n, const std::string& k, const Place& p) { \
    (void)k; (void)p; t.dataset->expr; }

const std::vector<KeyDef>& key_table() {
  static const std::vector<KeyDef> keys = {
      {"image_dir", Level::kSubsetOnly, LS_SUBSET(image_dir = read_string(n, k, p))},
      {"is_reg", Level::kSubsetOnly, LS_SUBSET(is_reg = read_bool(n, k, p))},
      {"num_repeats", Level::kSubset, LS_SUBSET(num_repeats = read_positive(n, k, p, 1))},
      {"class_tokens", Level::kSubset, LS_SUBSET(class_tokens = read_string(n, k, p))},
      {"caption_extension", Level::kSubset, LS_SUBSET(caption_extension = read_string(n, k, p))},
      {"shuffle_caption", Level::kSubset, LS_SUBSET(caption.shuffle_caption = read_bool(n, k, p))},
      {"caption_separator", Level::kSubset, LS_SUBSET(caption.caption_separator = read_string(n, k, p))},
      {"keep_tokens", Level::kSubset, LS_SUBSET(caption.keep_tokens = read_positive(n, k, p, 0))},
      {"keep_tokens_separator", Level::kSubset,
       LS_SUBSET(caption.keep_tokens_separator = read_string(n, k, p))},
      {"secondary_separator", Level::kSubset, LS_SUBSET(caption.secondary_separator = read_string(n, k, p))},
      {"caption_dropout_rate", Level::kSubset, LS_SUBSET(caption.caption_dropout_rate = read_rate(n, k, p))},
      {"caption_dropout_every_n_epochs", Level::kSubset,
       LS_SUBSET(caption.caption_dropout_every_n_epochs = read_positive(n, k, p, 0))},
      {"caption_tag_dropout_rate", Level::kSubset,
       LS_SUBSET(caption.caption_tag_dropout_rate = read_rate(n, k, p))},
      {"caption_prefix", Level::kSubset, LS_SUBSET(caption.caption_prefix = read_string(n, k, p))},
      {"caption_suffix", Level::kSubset, LS_SUBSET(caption.caption_suffix = read_string(n, k, p))},
      {"flip_aug", Level::kSubset, LS_SUBSET(flip_aug = read_bool(n, k, p))},
      {"random_crop", Level::kSubset, LS_SUBSET(random_crop = read_bool(n, k, p))},
      {"resolution", Level::kDataset, LS_DATASET(buckets.resolution = read_resolution(n, k, p))},
      {"batch_size", Level::kDataset, LS_DATASET(batch_size = read_positive(n, k, p, 1))},
      {"enable_bucket", Level::kDataset, LS_DATASET(buckets.enable_bucket = read_bool(n, k, p))},
      {"min_bucket_reso", Level::kDataset, LS_DATASET(buckets.min_bucket_reso = read_positive(n, k, p, 64))},
      {"max_bucket_reso", Level::kDataset, LS_DATASET(buckets.max_bucket_reso = read_positive(n, k, p, 64))},
      {"bucket_reso_steps", Level::kDataset,
       LS_DATASET(buckets.bucket_reso_steps = read_positive(n, k, p, 8))},
      {"bucket_no_upscale", Level::kDataset, LS_DATASET(buckets.bucket_no_upscale = read_bool(n, k, p))},
      {"prior_loss_weight", Level::kDataset, LS_DATASET(prior_loss_weight = read_number(n, k, p))},
  };
  return keys;
}

#undef LS_SUBSET
#undef LS_DATASET

// kohya keys lorastudio does not implement, with the value that means "off". Accepted at that
// value (configs exported by GUIs spell every key out); anything else is refused.
enum class OffValue { kFalse, kZero, kOne, kNone };
struct UnsupportedKey {
  const char* name;
  OffValue off;
};
constexpr UnsupportedKey kUnsupportedKohyaKeys[] = {
    {"color_aug", OffValue::kFalse},          {"enable_wildcard", OffValue::kFalse},
    {"alpha_mask", OffValue::kFalse},         {"cache_info", OffValue::kFalse},
    {"repeat_by_folder_name", OffValue::kFalse}, {"token_warmup_step", OffValue::kZero},
    {"validation_split", OffValue::kZero},    {"token_warmup_min", OffValue::kOne},
    {"sample_ratio", OffValue::kOne},         {"network_multiplier", OffValue::kOne},
    {"face_crop_aug_range", OffValue::kNone}, {"custom_attributes", OffValue::kNone},
    {"resize_interpolation", OffValue::kNone}, {"metadata_file", OffValue::kNone},
    {"conditioning_data_dir", OffValue::kNone}, {"path_pattern", OffValue::kNone},
    {"validation_seed", OffValue::kNone},     {"mask_dir", OffValue::kNone},
};

const UnsupportedKey* find_unsupported_kohya_key(const std::string& key) {
  for (const UnsupportedKey& k : kUnsupportedKohyaKeys)
    if (key == k.name) return &k;
  return nullptr;
}

bool is_off(const UnsupportedKey& key, const toml::node& n) {
  const bool numeric = n.is_integer() || n.is_floating_point();
  const double number = n.is_integer() ? double(*n.value<int64_t>()) : n.value<double>().value_or(-1);
  switch (key.off) {
    case OffValue::kFalse: return n.is_boolean() && !*n.value<bool>();
    case OffValue::kZero: return numeric && number == 0;
    case OffValue::kOne: return numeric && number == 1;
    case OffValue::kNone: return false;
  }
  return false;
}

std::string suggestion(const std::string& key) {
  std::vector<std::string> names;
  for (const KeyDef& def : key_table()) names.push_back(def.name);
  return core::did_you_mean(key, names);
}

// Applies the keys of `table` allowed at `allowed` levels; `skip` names child tables handled by
// the caller. Every other key is an error.
void apply_table(const toml::table& table, const std::vector<Level>& allowed, Target target, const Place& place,
                 const std::vector<std::string>& skip = {}) {
  for (auto&& [k, node] : table) {
    const std::string key(k.str());
    if (std::find(skip.begin(), skip.end(), key) != skip.end()) continue;
    auto def = std::find_if(key_table().begin(), key_table().end(), [&](const KeyDef& d) { return key == d.name; });
    if (def == key_table().end()) {
      if (const UnsupportedKey* unsupported = find_unsupported_kohya_key(key)) {
        LS_CHECK(is_off(*unsupported, node), place.where(node), ": kohya key '", key,
                 "' is not supported by lorastudio; remove it (or set it to its off value)");
        continue;
      }
      LS_FAIL(place.where(node), ": unknown key '", key, "'", suggestion(key),
              "; see docs/datasets.md for the keys lorastudio reads");
    }
    const bool ok = std::find(allowed.begin(), allowed.end(), def->level) != allowed.end();
    LS_CHECK(ok, place.where(node), ": '", key, "' cannot be set here",
             def->level == Level::kSubsetOnly ? "; it belongs in [[datasets.subsets]]"
                                              : "; it belongs in [general] or [[datasets]]");
    if (def->level == Level::kDataset) {
      if (target.dataset) def->set(target, node, key, place);
    } else if (target.subset) {
      def->set(target, node, key, place);
    }
  }
}

void validate_subset(const SubsetConfig& s, const std::string& where) {
  LS_CHECK(!s.image_dir.empty(), where, ": image_dir is required in every [[datasets.subsets]]");
  LS_CHECK(!s.caption_extension.empty() && s.caption_extension[0] == '.', where, ": caption_extension must start with",
           " a dot, e.g. \".txt\", got '", s.caption_extension, "'");
  try {
    validate_caption_options(s.caption);
  } catch (const Error& e) {
    LS_FAIL(where, ": ", e.what());
  }
}

}  // namespace

DataConfig parse_dataset_toml(std::string_view text, const std::string& source, const std::string& base_dir,
                              const DatasetConfig& defaults) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    LS_FAIL(source, ":", e.source().begin.line, ": TOML syntax error: ", e.description());
  }
  const toml::table empty;
  const toml::table* general = root["general"].as_table();
  if (!general) general = &empty;
  for (auto&& [k, node] : root) {
    const std::string key(k.str());
    LS_CHECK(key == "general" || key == "datasets", source, ":", node.source().begin.line, ": unknown top-level key '",
             key, "'; a dataset config has [general] and [[datasets]] only");
  }
  const toml::array* datasets = root["datasets"].as_array();
  LS_CHECK(datasets && !datasets->empty(), source, ": no [[datasets]] table; add one with at least one",
           " [[datasets.subsets]] holding image_dir");

  DataConfig config;
  config.source = source;
  const Place general_place{source, "[general]"};
  for (size_t di = 0; di < datasets->size(); ++di) {
    const toml::table* dt = (*datasets)[di].as_table();
    const Place dplace{source, str_cat("[[datasets]] #", di + 1)};
    LS_CHECK(dt, source, ": datasets #", di + 1, " must be a table ([[datasets]])");
    DatasetConfig dataset = defaults;
    dataset.subsets.clear();
    apply_table(*general, {Level::kDataset, Level::kSubset}, {nullptr, &dataset}, general_place);
    apply_table(*dt, {Level::kDataset, Level::kSubset}, {nullptr, &dataset}, dplace, {"subsets"});
    const toml::array* subsets = (*dt)["subsets"].as_array();
    LS_CHECK(subsets && !subsets->empty(), dplace.where(*dt), ": no [[datasets.subsets]]; add one with image_dir");
    for (size_t si = 0; si < subsets->size(); ++si) {
      const toml::table* st = (*subsets)[si].as_table();
      const Place splace{source, str_cat("[[datasets.subsets]] #", si + 1, " of dataset #", di + 1)};
      LS_CHECK(st, source, ": ", splace.table, " must be a table");
      SubsetConfig subset;
      apply_table(*general, {Level::kDataset, Level::kSubset}, {&subset, nullptr}, general_place);
      apply_table(*dt, {Level::kDataset, Level::kSubset}, {&subset, nullptr}, dplace, {"subsets"});
      apply_table(*st, {Level::kSubsetOnly, Level::kSubset}, {&subset, nullptr}, splace);
      validate_subset(subset, splace.where(*st));
      if (!base_dir.empty() && fs::path(subset.image_dir).is_relative())
        subset.image_dir = (fs::path(base_dir) / subset.image_dir).lexically_normal().string();
      dataset.subsets.push_back(std::move(subset));
    }
    try {
      BucketSelector check(dataset.buckets);  // validates the bucket settings now, with the file named
    } catch (const Error& e) {
      LS_FAIL(dplace.where(*dt), ": ", e.what());
    }
    config.datasets.push_back(std::move(dataset));
  }
  return config;
}

DataConfig load_dataset_toml(const std::string& path, const DatasetConfig& defaults) {
  std::error_code ec;
  LS_CHECK(fs::is_regular_file(path, ec), path, ": dataset config not found; pass a kohya dataset .toml or a folder",
           " of N_name subfolders");
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_dataset_toml(text, path, fs::absolute(path).parent_path().string(), defaults);
}

std::pair<int, std::string> parse_repeat_folder(const std::string& name) {
  const size_t us = name.find('_');
  const std::string head = name.substr(0, us);
  if (head.empty() || head.size() > 6 || !std::all_of(head.begin(), head.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return {0, ""};
  return {std::stoi(head), us == std::string::npos ? std::string() : name.substr(us + 1)};
}

namespace {

void add_folder_subsets(const std::string& parent, bool is_reg, const FolderSource& source, DatasetConfig& dataset,
                        Findings& findings) {
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) {
    findings.push_back({Severity::kError, "missing_folder", parent,
                        str_cat(parent, ": not a folder; pass the parent folder of the N_name subfolders")});
    return;
  }
  std::vector<fs::path> dirs;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code sec;
    if (it->is_directory(sec)) dirs.push_back(it->path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& dir : dirs) {
    const std::string name = dir.filename().string();
    if (!name.empty() && name[0] == '.') continue;  // our cache and other hidden folders
    const auto [repeats, class_tokens] = parse_repeat_folder(name);
    if (repeats < 1) {
      findings.push_back({Severity::kWarning, "bad_repeats_folder", dir.string(),
                          str_cat(dir.string(), ": folder name does not start with a repeat count (N_name, e.g. 10_",
                                  name, "); it is ignored, as kohya does")});
      continue;
    }
    SubsetConfig subset = source.subset_defaults;
    subset.image_dir = dir.string();
    subset.num_repeats = repeats;
    subset.class_tokens = class_tokens;
    subset.is_reg = is_reg;
    dataset.subsets.push_back(std::move(subset));
  }
}

}  // namespace

DataConfig folder_dataset(const FolderSource& source, Findings& findings) {
  DataConfig config;
  config.source = source.train_dir;
  DatasetConfig dataset = source.defaults;
  dataset.subsets.clear();
  add_folder_subsets(source.train_dir, false, source, dataset, findings);
  const bool any_train = !dataset.subsets.empty();
  if (!source.reg_dir.empty()) add_folder_subsets(source.reg_dir, true, source, dataset, findings);
  if (!any_train && fs::is_directory(source.train_dir))
    findings.push_back({Severity::kError, "no_subsets", source.train_dir,
                        str_cat(source.train_dir, ": no N_name subfolder (e.g. 10_sks dog) with images; kohya's folder",
                                " convention puts images in such subfolders")});
  config.datasets.push_back(std::move(dataset));
  return config;
}

DataConfig load_data_source(const std::string& path, const FolderSource& folder_defaults, Findings& findings) {
  const std::string& reg_dir = folder_defaults.reg_dir;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    FolderSource src = folder_defaults;
    src.train_dir = path;
    return folder_dataset(src, findings);
  }
  LS_CHECK(reg_dir.empty(), path, ": --reg-dir applies to a training folder; in a TOML config add a subset with",
           " is_reg = true");
  return load_dataset_toml(path);
}

}  // namespace ls::data
