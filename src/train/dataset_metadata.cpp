// kohya's dataset metadata; see dataset_metadata.h. Key order inside each JSON object is kohya's
// dict order (json.dumps keeps it), so the text equals what kohya writes for the same dataset.
#include "train/dataset_metadata.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "io/python_text.h"
#include "text/unicode.h"

namespace fs = std::filesystem;

namespace ls::train {
namespace {

using DmJson = nlohmann::ordered_json;

// os.path.basename: the text after the last '/' ("" for a path ending in one).
std::string dm_basename(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Images scanned per subset (kohya's subset.img_count: the files it found).
std::vector<int64_t> dm_images_per_subset(const data::DatasetIndex& d) {
  std::vector<int64_t> n(d.config.subsets.size(), 0);
  for (const data::ImageRecord& r : d.images) ++n.at(static_cast<size_t>(r.subset));
  return n;
}

// kohya's DreamBoothDataset keeps a subset only with num_repeats >= 1 and at least one image.
bool dm_subset_kept(const data::DatasetIndex& d, size_t si, const std::vector<int64_t>& counts) {
  return d.config.subsets[si].num_repeats >= 1 && counts[si] > 0;
}

// None for an unset text (lorastudio keeps "" for kohya's None).
DmJson dm_text_or_null(const std::string& s) { return s.empty() ? DmJson(nullptr) : DmJson(s); }

// kohya's adjust_min_max_bucket_reso_by_steps: min down, max up to a multiple of the steps.
std::pair<int, int> dm_bucket_limits(const data::BucketOptions& b) {
  const int step = b.bucket_reso_steps > 0 ? b.bucket_reso_steps : 1;
  const int lo = b.min_bucket_reso - b.min_bucket_reso % step;
  const int hi = b.max_bucket_reso % step ? b.max_bucket_reso + step - b.max_bucket_reso % step : b.max_bucket_reso;
  return {lo, hi};
}

DmJson dm_subset_json(const data::SubsetConfig& s, int64_t img_count) {
  DmJson j;
  j["img_count"] = img_count;
  j["num_repeats"] = s.num_repeats;
  j["color_aug"] = false;  // refused unless off
  j["flip_aug"] = s.flip_aug;
  j["random_crop"] = s.random_crop;
  j["shuffle_caption"] = s.caption.shuffle_caption;
  j["keep_tokens"] = s.caption.keep_tokens;
  j["keep_tokens_separator"] = s.caption.keep_tokens_separator;  // kohya's argparse default is ""
  j["secondary_separator"] = dm_text_or_null(s.caption.secondary_separator);
  j["enable_wildcard"] = false;  // refused unless off
  j["caption_prefix"] = dm_text_or_null(s.caption.caption_prefix);
  j["caption_suffix"] = dm_text_or_null(s.caption.caption_suffix);
  j["resize_interpolation"] = nullptr;  // not a key here: kohya's None
  j["image_dir"] = dm_basename(s.image_dir);
  j["class_tokens"] = dm_text_or_null(s.class_tokens);
  j["is_reg"] = s.is_reg;
  return j;
}

DmJson dm_dataset_json(const data::DatasetIndex& d) {
  const data::BucketOptions& b = d.config.buckets;
  const auto [lo, hi] = dm_bucket_limits(b);
  DmJson j;
  j["is_dreambooth"] = true;  // lorastudio's datasets are all DreamBooth-style (no metadata files)
  j["batch_size_per_device"] = d.config.batch_size;
  j["num_train_images"] = d.train_images_with_repeats;
  j["num_reg_images"] = d.reg_images_with_repeats;
  j["resolution"] = DmJson::array({b.resolution.width, b.resolution.height});
  j["enable_bucket"] = b.enable_bucket;
  j["min_bucket_reso"] = b.enable_bucket ? DmJson(lo) : DmJson(nullptr);
  j["max_bucket_reso"] = b.enable_bucket ? DmJson(hi) : DmJson(nullptr);
  j["tag_frequency"] = tag_frequency(d);
  j["bucket_info"] = bucket_info(d);
  j["resize_interpolation"] = nullptr;
  DmJson subsets = DmJson::array();
  const std::vector<int64_t> counts = dm_images_per_subset(d);
  for (size_t si = 0; si < d.config.subsets.size(); ++si)
    if (dm_subset_kept(d, si, counts)) subsets.push_back(dm_subset_json(d.config.subsets[si], counts[si]));
  j["subsets"] = std::move(subsets);
  return j;
}

DmJson dm_dir_info(const data::SubsetConfig& s, int64_t img_count) {
  DmJson j;
  j["n_repeats"] = s.num_repeats;
  j["img_count"] = img_count;
  return j;
}

void dm_add_config_mode(const std::vector<data::DatasetIndex>& datasets, std::map<std::string, std::string>& m) {
  DmJson all = DmJson::array(), tags = DmJson::object(), dirs = DmJson::object();
  for (const data::DatasetIndex& d : datasets) {
    all.push_back(dm_dataset_json(d));
    const std::vector<int64_t> counts = dm_images_per_subset(d);
    for (size_t si = 0; si < d.config.subsets.size(); ++si) {
      const data::SubsetConfig& s = d.config.subsets[si];
      if (!dm_subset_kept(d, si, counts) || s.is_reg) continue;  // kohya lists no reg folder here
      const std::string name = dm_basename(s.image_dir);
      std::string key = name;
      for (int k = 2; dirs.contains(key); ++k) key = name + " (" + std::to_string(k) + ")";
      dirs[key] = dm_dir_info(s, counts[si]);
    }
    // A folder used by several datasets is counted once (kohya: the first dataset's counts).
    const DmJson freq_of_dataset = tag_frequency(d);
    for (const auto& [dir, freq] : freq_of_dataset.items())
      if (!tags.contains(dir)) tags[dir] = freq;
  }
  m["ss_datasets"] = io::python_json_dumps(all);
  m["ss_tag_frequency"] = io::python_json_dumps(tags);
  m["ss_dataset_dirs"] = io::python_json_dumps(dirs);
}

void dm_add_folder_mode(const TrainConfig& c, const data::DatasetIndex& d, int world_size,
                        std::map<std::string, std::string>& m) {
  using io::python_bool;
  const data::BucketOptions& b = d.config.buckets;
  const auto [lo, hi] = dm_bucket_limits(b);
  DmJson dirs = DmJson::object(), reg_dirs = DmJson::object();
  const std::vector<int64_t> counts = dm_images_per_subset(d);
  for (size_t si = 0; si < d.config.subsets.size(); ++si) {
    const data::SubsetConfig& s = d.config.subsets[si];
    if (dm_subset_kept(d, si, counts)) (s.is_reg ? reg_dirs : dirs)[dm_basename(s.image_dir)] = dm_dir_info(s, counts[si]);
  }
  const int64_t total = static_cast<int64_t>(c.train_batch_size) * world_size * c.gradient_accumulation_steps;
  m["ss_batch_size_per_device"] = std::to_string(c.train_batch_size);
  m["ss_total_batch_size"] = std::to_string(total);
  m["ss_resolution"] = "(" + std::to_string(c.resolution[0]) + ", " + std::to_string(c.resolution[1]) + ")";
  m["ss_color_aug"] = python_bool(false);  // refused unless off
  m["ss_flip_aug"] = python_bool(c.flip_aug);
  m["ss_random_crop"] = python_bool(c.random_crop);
  m["ss_shuffle_caption"] = python_bool(c.shuffle_caption);
  m["ss_enable_bucket"] = python_bool(b.enable_bucket);
  m["ss_bucket_no_upscale"] = python_bool(b.enable_bucket && b.bucket_no_upscale);
  m["ss_min_bucket_reso"] = b.enable_bucket ? std::to_string(lo) : "None";
  m["ss_max_bucket_reso"] = b.enable_bucket ? std::to_string(hi) : "None";
  m["ss_keep_tokens"] = std::to_string(c.keep_tokens);
  m["ss_dataset_dirs"] = io::python_json_dumps(dirs);
  m["ss_reg_dataset_dirs"] = io::python_json_dumps(reg_dirs);
  m["ss_tag_frequency"] = io::python_json_dumps(tag_frequency(d));
  m["ss_bucket_info"] = io::python_json_dumps(bucket_info(d));
}

}  // namespace

nlohmann::ordered_json tag_frequency(const data::DatasetIndex& d) {
  DmJson out = DmJson::object();
  for (size_t si = 0; si < d.config.subsets.size(); ++si) {
    const data::SubsetConfig& s = d.config.subsets[si];
    std::error_code ec;
    // kohya reads a folder (and names it here) when its repeats are >= 1 and it exists.
    if (s.num_repeats < 1 || !fs::is_directory(s.image_dir, ec)) continue;
    DmJson& freq = out[dm_basename(s.image_dir)];
    if (freq.is_null()) freq = DmJson::object();
    for (const data::ImageRecord& r : d.images) {
      if (r.subset != static_cast<int>(si)) continue;
      size_t start = 0;
      while (start <= r.caption.size()) {
        const size_t comma = std::min(r.caption.find(',', start), r.caption.size());
        const std::string tag = text::py_strip(std::string_view(r.caption).substr(start, comma - start));
        start = comma + 1;
        if (tag.empty()) continue;
        const std::string lower = text::u32_to_utf8(text::py_lower(text::utf8_to_u32(tag)));
        DmJson& n = freq[lower];
        n = n.is_null() ? int64_t{1} : n.get<int64_t>() + 1;
      }
    }
  }
  return out;
}

nlohmann::ordered_json bucket_info(const data::DatasetIndex& d) {
  if (!d.config.buckets.enable_bucket) return nullptr;
  // The images the epoch uses: kohya's image_data holds the train images, then the reg images
  // the balancing registered (those with repeats left).
  std::map<data::Reso, int64_t> counts;
  std::vector<double> errors;
  for (const bool reg : {false, true}) {
    for (const data::ImageRecord& r : d.images) {
      if (r.is_reg != reg || r.num_repeats <= 0) continue;
      counts[r.bucket.bucket] += r.num_repeats;
      errors.push_back(std::abs(r.bucket.ar_error));
    }
  }
  DmJson buckets = DmJson::object();
  int i = 0;
  for (const auto& [reso, n] : counts) {
    DmJson b;
    b["resolution"] = DmJson::array({reso.width, reso.height});
    b["count"] = n;
    buckets[std::to_string(i++)] = std::move(b);
  }
  DmJson out;
  out["buckets"] = std::move(buckets);
  out["mean_img_ar_error"] = errors.empty() ? DmJson(0) : DmJson(numpy_mean(errors));  // kohya: 0 "avoid NaN"
  return out;
}

namespace {
// numpy's pairwise_sum (umath loops_utils): < 8 values in a row, up to 128 with 8 interleaved
// partial sums, more split in two halves of a multiple of 8.
double dm_pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (size_t j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (size_t j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return dm_pairwise_sum(a, n2) + dm_pairwise_sum(a + n2, n - n2);
}
}  // namespace

double numpy_mean(const std::vector<double>& values) {
  LS_CHECK(!values.empty(), "numpy_mean: no values");
  return dm_pairwise_sum(values.data(), values.size()) / static_cast<double>(values.size());
}

std::map<std::string, std::string> dataset_lora_metadata(const TrainConfig& config,
                                                         const std::vector<data::DatasetIndex>& datasets,
                                                         int world_size) {
  std::map<std::string, std::string> m;
  if (!config.dataset_config.empty()) {
    dm_add_config_mode(datasets, m);
  } else {
    // kohya's folder convention makes exactly one dataset.
    LS_CHECK(datasets.size() == 1, "LoRA metadata: a train_data_dir run has one dataset, got ", datasets.size());
    dm_add_folder_mode(config, datasets.front(), world_size, m);
  }
  return m;
}

}  // namespace ls::train
