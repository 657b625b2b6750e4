// Dataset scan, regularization balancing and the seeded epoch plan (kohya-ss/sd-scripts
// library/train_util.py: DreamBoothDataset.__init__, BaseDataset.make_buckets/shuffle_buckets).
#include "data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "core/strings.h"

namespace fs = std::filesystem;

namespace ls::data {

namespace {

bool has_image_extension(const fs::path& p) {
  const std::string ext = core::ascii_lower(p.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".webp" || ext == ".bmp";
}

// One image: bytes, hash, size, caption. Returns false (with a finding) when unusable. Without
// scan.decode every check short of decoding still runs (io::check_image: structure walked to its
// end, pixel limit, declared size vs data, PNG CRCs), so a truncated download or a bomb is found
// before training starts, not at its batch.
bool examine_image(const std::string& path, const SubsetConfig& subset, const ScanOptions& scan, ImageRecord& rec,
                   cv::Mat& decoded, Findings& findings) {
  std::error_code ec;
  if (fs::file_size(path, ec) > 0 && !ec) {
    try {
      io::check_image_file_header(path);  // a non-image or a bomb is refused before its bytes are read
    } catch (const Error& e) {
      findings.push_back({Severity::kError, "unreadable_image", path, e.what()});
      return false;
    }
  }
  std::string bytes;
  try {
    bytes = core::read_file(path);
  } catch (const Error& e) {
    findings.push_back({Severity::kError, "unreadable_file", path, e.what()});
    return false;
  }
  if (bytes.empty()) {
    findings.push_back({Severity::kError, "empty_file", path,
                        str_cat(path, ": 0-byte file; delete it or copy the image again")});
    return false;
  }
  rec.content_hash = core::sha256_hex(bytes);
  const std::vector<uint8_t> data(bytes.begin(), bytes.end());
  try {
    rec.size = io::check_image(data, path);
  } catch (const Error& e) {
    findings.push_back({Severity::kError, "unreadable_image", path, e.what()});
    return false;
  }
  if (scan.decode) {
    try {
      decoded = io::decode_image_rgb(data, path);
    } catch (const Error& e) {
      findings.push_back({Severity::kError, "corrupt_image", path, e.what()});
      return false;
    }
  }
  const std::string caption_path = (fs::path(path).parent_path() / fs::path(path).stem()).string() +
                                   subset.caption_extension;
  CaptionFile cap;
  try {
    cap = read_caption_file(caption_path);
  } catch (const Error& e) {
    findings.push_back({Severity::kError, "bad_caption", caption_path, e.what()});
    return false;
  }
  rec.caption_file = cap.exists && !cap.empty;
  if (rec.caption_file) {
    rec.caption = cap.text;
    return true;
  }
  // kohya falls back to the class tokens when there is no caption file; lorastudio does the
  // same for an empty one (kohya stops on it), and says so.
  rec.caption = subset.class_tokens;
  const std::string fallback = subset.class_tokens.empty()
                                   ? std::string("no class tokens either: this image trains with an empty caption")
                                   : str_cat("using the class tokens '", subset.class_tokens, "'");
  if (cap.exists)
    findings.push_back({Severity::kWarning, "empty_caption", caption_path,
                        str_cat(caption_path, ": empty caption; ", fallback)});
  else
    findings.push_back({subset.class_tokens.empty() ? Severity::kWarning : Severity::kInfo, "missing_caption", path,
                        str_cat(path, ": no caption file (", fs::path(caption_path).filename().string(), "); ",
                                fallback)});
  return true;
}

// The loss mask of an image: its alpha channel, or the same-named image in conditioning_data_dir
// (any image extension, as kohya's ControlNet dataset matches them by stem), which must have the
// image's size. Returns false (with a finding) when the mask image is missing or unusable.
bool find_loss_mask(const SubsetConfig& subset, ImageRecord& rec, Findings& findings) {
  if (subset.conditioning_data_dir.empty()) {
    rec.mask = subset.alpha_mask ? ImageRecord::Mask::kAlpha : ImageRecord::Mask::kNone;
    return true;
  }
  const std::string stem = fs::path(rec.path).stem().string();
  std::string found;
  for (const char* ext : {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".PNG", ".JPG", ".JPEG", ".WEBP", ".BMP"}) {
    const fs::path p = fs::path(subset.conditioning_data_dir) / (stem + ext);
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) {
      found = p.string();
      break;
    }
  }
  if (found.empty()) {
    findings.push_back({Severity::kError, "missing_mask", rec.path,
                        str_cat(rec.path, ": no mask image ", stem, ".png (or .jpg, .webp, .bmp) in conditioning_data_dir ",
                                subset.conditioning_data_dir, "; add one of the image's size or remove the image")});
    return false;
  }
  try {
    const io::ImageSize size = io::read_image_size(found);
    LS_CHECK(size.width == rec.size.width && size.height == rec.size.height, found, ": mask is ", size.width, "x",
             size.height, " but its image ", rec.path, " is ", rec.size.width, "x", rec.size.height,
             "; resize the mask to the image's size");
    rec.mask_hash = core::sha256_hex(core::read_file(found));
  } catch (const Error& e) {
    findings.push_back({Severity::kError, "bad_mask", found, e.what()});
    return false;
  }
  rec.mask = ImageRecord::Mask::kImage;
  rec.mask_path = found;
  return true;
}

// kohya: the first reg images are registered with their own repeats until they reach the
// number of train images (with repeats); while short, further passes add one repeat per image.
void balance_regularization(DatasetIndex& index) {
  std::vector<ImageRecord*> reg;
  for (ImageRecord& r : index.images)
    if (r.is_reg) reg.push_back(&r);
  std::vector<int> repeats(reg.size(), 0);
  int64_t n = 0;
  bool first = true;
  while (n < index.train_images_with_repeats && !reg.empty()) {
    for (size_t i = 0; i < reg.size(); ++i) {
      if (first) {
        repeats[i] = reg[i]->num_repeats;
        n += reg[i]->num_repeats;
      } else {
        repeats[i] += 1;
        n += 1;
      }
      if (n >= index.train_images_with_repeats) break;
    }
    first = false;
  }
  for (size_t i = 0; i < reg.size(); ++i) reg[i]->num_repeats = repeats[i];
}

}  // namespace

std::vector<std::string> list_image_files(const std::string& dir, Findings& findings) {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path p = it->path();
    if (!has_image_extension(p)) continue;
    std::error_code sec;
    const fs::file_status st = fs::status(p, sec);  // follows links: a loop or a dangling link fails here
    if (sec || !fs::exists(st)) {
      findings.push_back({Severity::kError, "unreadable_file", p.string(),
                          str_cat(p.string(), ": cannot be opened (", sec ? sec.message() : "dangling link",
                                  "); remove it or point it at an image")});
      continue;
    }
    if (fs::is_regular_file(st)) {
      files.push_back(p.string());
    } else {  // reading a folder fails and a FIFO blocks: skipped, and said
      findings.push_back({Severity::kWarning, "not_a_file", p.string(),
                          str_cat(p.string(), ": is ", fs::is_directory(st) ? "a folder" : "not a regular file",
                                  " named like an image; skipped (rename it or move it out of the dataset)")});
    }
  }
  if (ec)
    findings.push_back({Severity::kError, "unreadable_folder", dir, str_cat(dir, ": cannot list (", ec.message(), ")")});
  std::sort(files.begin(), files.end());
  return files;
}

DatasetIndex index_dataset(const DatasetConfig& config, Findings& findings, const ScanOptions& scan) {
  DatasetIndex index;
  index.config = config;
  const BucketSelector selector(config.buckets);
  for (size_t si = 0; si < config.subsets.size(); ++si) {
    const SubsetConfig& subset = config.subsets[si];
    std::error_code ec;
    if (!subset.conditioning_data_dir.empty() && !fs::is_directory(subset.conditioning_data_dir, ec)) {
      findings.push_back({Severity::kError, "missing_folder", subset.conditioning_data_dir,
                          str_cat(subset.conditioning_data_dir,
                                  ": conditioning_data_dir is not a folder; fix the path in the config")});
      continue;
    }
    if (!fs::is_directory(subset.image_dir, ec)) {
      findings.push_back({Severity::kError, "missing_folder", subset.image_dir,
                          str_cat(subset.image_dir, ": image_dir is not a folder; fix the path in the config")});
      continue;
    }
    const std::vector<std::string> files = list_image_files(subset.image_dir, findings);
    if (files.empty())
      findings.push_back({Severity::kWarning, "empty_subset", subset.image_dir,
                          str_cat(subset.image_dir, ": no images (png, jpg, webp, bmp) in this subset")});
    core::Progress progress(str_cat("scanning ", fs::path(subset.image_dir).filename().string()),
                            static_cast<int64_t>(files.size()), "img", scan.show_progress && !files.empty());
    struct Tick {  // counts an image however its examination ends
      core::Progress& p;
      ~Tick() { p.advance(); }
    };
    for (const std::string& path : files) {
      const Tick tick{progress};
      ImageRecord rec;
      rec.path = path;
      rec.subset = static_cast<int>(si);
      rec.is_reg = subset.is_reg;
      rec.num_repeats = subset.num_repeats;
      cv::Mat decoded;
      if (!examine_image(path, subset, scan, rec, decoded, findings)) continue;
      if (!find_loss_mask(subset, rec, findings)) continue;
      rec.bucket = selector.select(rec.size.width, rec.size.height);
      if (scan.on_decoded) scan.on_decoded(rec, decoded);
      (subset.is_reg ? index.reg_images_with_repeats : index.train_images_with_repeats) += rec.num_repeats;
      index.images.push_back(std::move(rec));
    }
  }
  if (index.reg_images_with_repeats > 0 && index.train_images_with_repeats > 0) {
    balance_regularization(index);
    if (index.reg_images_with_repeats > index.train_images_with_repeats)
      findings.push_back({Severity::kInfo, "reg_unused", "",
                          str_cat("only ", index.train_images_with_repeats, " of ", index.reg_images_with_repeats,
                                  " regularization images (with repeats) are used per epoch, as kohya does")});
  }
  return index;
}

std::vector<DatasetIndex> index_datasets(const DataConfig& config, Findings& findings, const ScanOptions& scan) {
  std::vector<DatasetIndex> out;
  for (const DatasetConfig& d : config.datasets) out.push_back(index_dataset(d, findings, scan));
  int64_t train = 0;
  for (const DatasetIndex& d : out) train += d.train_images_with_repeats;
  if (train == 0)
    findings.push_back({Severity::kError, "no_train_images", config.source,
                        str_cat(config.source, ": no usable training images; add images to a non-reg subset")});
  return out;
}

namespace {

// Per bucket, the image indices with repeats, in index order (the epoch shuffle comes after).
std::map<Reso, std::vector<int>> bucket_members(const DatasetIndex& d) {
  std::map<Reso, std::vector<int>> members;
  for (size_t i = 0; i < d.images.size(); ++i)
    for (int r = 0; r < d.images[i].num_repeats; ++r) members[d.images[i].bucket.bucket].push_back(static_cast<int>(i));
  return members;
}

}  // namespace

std::vector<BatchPlan> epoch_plan(const std::vector<DatasetIndex>& datasets, uint64_t seed, int epoch,
                                  int batches_per_step) {
  LS_CHECK(batches_per_step >= 1, "epoch plan: batches per step must be at least 1");
  std::vector<BatchPlan> plan;
  for (size_t di = 0; di < datasets.size(); ++di) {
    const int bs = datasets[di].config.batch_size * batches_per_step;
    core::Rng rng(seed, {static_cast<uint64_t>(epoch), di, core::purpose_id("bucket_order")});
    for (auto& [reso, members] : bucket_members(datasets[di])) {
      rng.shuffle(members);
      for (size_t start = 0; start < members.size(); start += static_cast<size_t>(bs)) {
        BatchPlan b;
        b.dataset = static_cast<int>(di);
        b.bucket = reso;
        b.images.assign(members.begin() + static_cast<long>(start),
                        members.begin() + static_cast<long>(std::min(members.size(), start + static_cast<size_t>(bs))));
        plan.push_back(std::move(b));
      }
    }
  }
  core::Rng rng(seed, {static_cast<uint64_t>(epoch), core::purpose_id("batch_order")});
  rng.shuffle(plan);
  return plan;
}

int64_t steps_per_epoch(const DatasetIndex& dataset, int batch_size) {
  int64_t steps = 0;
  for (const auto& [reso, members] : bucket_members(dataset))
    steps += (static_cast<int64_t>(members.size()) + batch_size - 1) / batch_size;
  return steps;
}

int64_t steps_per_epoch(const std::vector<DatasetIndex>& datasets, int batches_per_step) {
  int64_t steps = 0;
  for (const DatasetIndex& d : datasets) steps += steps_per_epoch(d, d.config.batch_size * batches_per_step);
  return steps;
}

}  // namespace ls::data
