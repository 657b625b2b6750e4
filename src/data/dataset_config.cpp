// kohya dataset TOML and folder convention -> DataConfig. The key tables below (core/key_table.h)
// are the single list of what lorastudio understands; kohya keys it does not implement are rows
// taken only at their off value, so a config written for kohya either means the same here or is
// refused.
#include "data/dataset_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <toml++/toml.h>

#include "core/error.h"
#include "core/key_table.h"
#include "core/nearest_name.h"
#include "core/toml_value.h"

namespace fs = std::filesystem;

namespace ls::data {
namespace {

// Where a key may appear: kSubsetOnly keys only in [[datasets.subsets]]; kSubset keys at any
// level (nearest wins); dataset keys (their own table) in [general] or [[datasets]].
enum Level { kSubset, kSubsetOnly };

struct Place {
  std::string source;  // file name
  std::string table;   // "[general]", "[[datasets]] #1", ...
  std::string where(const toml::node& node) const {
    return str_cat(source, ":", node.source().begin.line, ": ", table);
  }
};

template <typename T>
core::Key<T> at(core::Key<T> key, Level level) {
  key.level = level;
  return key;
}

// Counts are capped at a million: a typo of extra digits must not make a run of years.
template <typename T>
core::Key<T> count(core::Key<T> key, int min) {
  return core::within(std::move(key), min, 1'000'000);
}

template <typename T>
core::Key<T> rate(core::Key<T> key) {
  return core::within(std::move(key), 0, 1);
}

using S = SubsetConfig;
using D = DatasetConfig;
using C = CaptionOptions;
using B = BucketOptions;

// kohya keys lorastudio does not implement, with the value that means "off": taken at that value
// (configs exported by GUIs spell every key out); anything else is refused.
core::Key<S> refused(const char* name, core::OffValue::Kind off) { return core::refused_key<S>(name, off); }

const core::KeyTable<S>& subset_keys() {
  using core::field_key;
  using Off = core::OffValue::Kind;
  static const core::KeyTable<S> table({
      at(field_key("image_dir", &S::image_dir, "folder of the subset's images"), kSubsetOnly),
      at(field_key("is_reg", &S::is_reg, "regularisation images"), kSubsetOnly),
      count(field_key("num_repeats", &S::num_repeats, "times each image is seen per epoch"), 1),
      field_key("class_tokens", &S::class_tokens, "caption of images without a caption file"),
      field_key("caption_extension", &S::caption_extension, "caption file extension"),
      field_key("shuffle_caption", &S::caption, &C::shuffle_caption, "shuffle the tags"),
      field_key("caption_separator", &S::caption, &C::caption_separator, "tag separator"),
      count(field_key("keep_tokens", &S::caption, &C::keep_tokens, "leading tags kept in place"), 0),
      field_key("keep_tokens_separator", &S::caption, &C::keep_tokens_separator, "fixed | flexible | fixed"),
      field_key("secondary_separator", &S::caption, &C::secondary_separator, "separator inside a tag"),
      rate(field_key("caption_dropout_rate", &S::caption, &C::caption_dropout_rate, "probability of no caption")),
      count(field_key("caption_dropout_every_n_epochs", &S::caption, &C::caption_dropout_every_n_epochs,
                      "no captions every N epochs"), 0),
      rate(field_key("caption_tag_dropout_rate", &S::caption, &C::caption_tag_dropout_rate,
                     "probability of dropping each tag")),
      field_key("caption_prefix", &S::caption, &C::caption_prefix, "text before every caption"),
      field_key("caption_suffix", &S::caption, &C::caption_suffix, "text after every caption"),
      field_key("flip_aug", &S::flip_aug, "random horizontal flips"),
      field_key("random_crop", &S::random_crop, "random instead of centred crops"),
      field_key("alpha_mask", &S::alpha_mask, "the image's alpha channel masks the loss"),
      at(field_key("conditioning_data_dir", &S::conditioning_data_dir,
                   "folder of mask images (red channel, same names) for masked_loss"), kSubsetOnly),
      refused("color_aug", Off::kFalse),          refused("enable_wildcard", Off::kFalse),
      refused("cache_info", Off::kFalse),
      refused("repeat_by_folder_name", Off::kFalse), refused("token_warmup_step", Off::kZero),
      refused("validation_split", Off::kZero),    refused("token_warmup_min", Off::kOne),
      refused("sample_ratio", Off::kOne),         refused("network_multiplier", Off::kOne),
      refused("face_crop_aug_range", Off::kNone), refused("custom_attributes", Off::kNone),
      refused("resize_interpolation", Off::kNone), refused("metadata_file", Off::kNone),
      refused("path_pattern", Off::kNone),
      refused("validation_seed", Off::kNone),     refused("mask_dir", Off::kNone),
  });
  return table;
}

// kohya's dataset `resolution`: one integer (square) or [width, height].
core::Key<D> resolution_key() {
  core::Key<D> k;
  k.name = "resolution";
  k.help = "training size: an integer or [width, height]";
  k.set = [](D& d, const core::KeyValue& v, const std::string& subject) {
    const auto side = [&](const core::KeyValue& item) {
      LS_CHECK(item.kind == core::KeyValue::Kind::kInteger, subject, " must be an integer or [width, height]");
      core::check_range(item.number, subject, 64, 1'000'000, item.shown);
      return static_cast<int>(item.integer);
    };
    if (v.kind == core::KeyValue::Kind::kArray) {
      LS_CHECK(v.items.size() == 2, subject, " must be an integer or [width, height]");
      d.buckets.resolution = {side(v.items[0]), side(v.items[1])};
    } else {
      const int s = side(v);
      d.buckets.resolution = {s, s};
    }
  };
  return k;
}

const core::KeyTable<D>& dataset_keys() {
  using core::field_key;
  static const core::KeyTable<D> table({
      resolution_key(),
      count(field_key("batch_size", &D::batch_size, "images per batch"), 1),
      field_key("enable_bucket", &D::buckets, &B::enable_bucket, "aspect-ratio buckets"),
      count(field_key("min_bucket_reso", &D::buckets, &B::min_bucket_reso, "smallest bucket side"), 64),
      count(field_key("max_bucket_reso", &D::buckets, &B::max_bucket_reso, "largest bucket side"), 64),
      count(field_key("bucket_reso_steps", &D::buckets, &B::bucket_reso_steps, "bucket side step"), 8),
      field_key("bucket_no_upscale", &D::buckets, &B::bucket_no_upscale, "never upscale to fill a bucket"),
      field_key("prior_loss_weight", &D::prior_loss_weight, "loss weight of regularisation images"),
  });
  return table;
}

std::string suggestion(const std::string& key) {
  std::vector<std::string> names = subset_keys().names();
  for (const std::string& n : dataset_keys().names()) names.push_back(n);
  return core::did_you_mean(key, names);
}

// Applies the keys of `table` to a subset (subset_only: also the subset-only keys) or to a
// dataset; `skip` names child tables handled by the caller. Every other key is an error.
void apply_table(const toml::table& table, SubsetConfig* subset, DatasetConfig* dataset, bool subset_only,
                 const Place& place, const std::vector<std::string>& skip = {}) {
  for (auto&& [k, node] : table) {
    const std::string key(k.str());
    if (std::find(skip.begin(), skip.end(), key) != skip.end()) continue;
    const std::string where = place.where(node);
    const std::string subject = str_cat(where, ": '", key, "'");
    const core::KeyValue value = core::toml_value(node);
    if (const core::Key<D>* d = dataset_keys().find(key)) {
      LS_CHECK(!subset_only, where, ": '", key, "' cannot be set here; it belongs in [general] or [[datasets]]");
      if (dataset) d->set(*dataset, value, subject);
      continue;
    }
    const core::Key<S>* s = subset_keys().find(key);
    if (!s) LS_FAIL(where, ": unknown key '", key, "'", suggestion(key), "; see docs/datasets.md for the keys lorastudio reads");
    LS_CHECK(subset_only || s->level != kSubsetOnly, where, ": '", key,
             "' cannot be set here; it belongs in [[datasets.subsets]]");
    SubsetConfig scratch;  // refused keys are checked wherever they appear
    const core::Applied applied = subset_keys().apply(subset ? *subset : scratch, key, value, subject, nullptr);
    LS_CHECK(applied != core::Applied::kRefused, where, ": kohya key '", key,
             "' is not supported by lorastudio; remove it (or set it to its off value)");
  }
}

}  // namespace

bool set_folder_default(FolderSource& source, const std::string& key, const core::KeyValue& value) {
  const std::string name = key == "train_batch_size" ? "batch_size" : key;  // kohya's one renamed key
  if (value.kind == core::KeyValue::Kind::kOther) return false;              // an unset optional
  if (const core::Key<D>* d = dataset_keys().find(name)) {
    d->set(source.defaults, value, key);
    return true;
  }
  const core::Key<S>* s = subset_keys().find(name);
  if (!s || !s->taken() || s->level == kSubsetOnly) return false;
  s->set(source.subset_defaults, value, key);
  return true;
}

namespace {

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
    apply_table(*general, nullptr, &dataset, false, general_place);
    apply_table(*dt, nullptr, &dataset, false, dplace, {"subsets"});
    const toml::array* subsets = (*dt)["subsets"].as_array();
    LS_CHECK(subsets && !subsets->empty(), dplace.where(*dt), ": no [[datasets.subsets]]; add one with image_dir");
    for (size_t si = 0; si < subsets->size(); ++si) {
      const toml::table* st = (*subsets)[si].as_table();
      const Place splace{source, str_cat("[[datasets.subsets]] #", si + 1, " of dataset #", di + 1)};
      LS_CHECK(st, source, ": ", splace.table, " must be a table");
      SubsetConfig subset;
      apply_table(*general, &subset, nullptr, false, general_place);
      apply_table(*dt, &subset, nullptr, false, dplace, {"subsets"});
      apply_table(*st, &subset, nullptr, true, splace);
      validate_subset(subset, splace.where(*st));
      if (!base_dir.empty() && fs::path(subset.image_dir).is_relative())
        subset.image_dir = (fs::path(base_dir) / subset.image_dir).lexically_normal().string();
      if (!base_dir.empty() && !subset.conditioning_data_dir.empty() && fs::path(subset.conditioning_data_dir).is_relative())
        subset.conditioning_data_dir = (fs::path(base_dir) / subset.conditioning_data_dir).lexically_normal().string();
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
