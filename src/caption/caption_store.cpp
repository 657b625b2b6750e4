#include "caption/caption_store.h"

#include <algorithm>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "caption/caption_history.h"
#include "caption/caption_run.h"
#include "caption/caption_text.h"
#include "caption/tag_probs.h"
#include "caption/tag_selection.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/path_within.h"
#include "core/sha256.h"
#include "core/strings.h"

namespace ls::caption {

namespace fs = std::filesystem;

std::string caption_hash(const std::string& text) { return core::sha256_hex(text); }

namespace {

// The selection options of the folder's newest `caption` or `caption retag` run (its log under
// .lorastudio/caption_runs/), so a re-slice keeps the user's underscores, prefix, exclusions...
// Defaults when there is none. The thresholds and MCut are the caller's.
SelectionOptions last_selection_options(const fs::path& dir) {
  SelectionOptions options;
  std::error_code ec;
  std::vector<fs::path> logs;
  for (const auto& entry : fs::directory_iterator(dir / ".lorastudio" / "caption_runs", ec))
    if (entry.path().extension() == ".json") logs.push_back(entry.path());
  std::sort(logs.begin(), logs.end());  // run ids start with their UTC time
  for (auto it = logs.rbegin(); it != logs.rend(); ++it) {
    auto log = nlohmann::json::parse(core::read_file(*it), nullptr, false);
    if (!log.is_object() || !log.contains("options") || !log["options"].contains("selection")) continue;
    const std::string command = log.value("command", "");
    if (command != "caption" && command != "caption retag") continue;
    for (const auto& [name, value] : log["options"]["selection"].items()) {
      if (!value.is_string() || value.get<std::string>().empty()) continue;
      if (name == "thresh" || name.find("threshold") != std::string::npos || name.find("mcut") != std::string::npos)
        continue;
      selection_keys().apply(options, name, core::text_value(value.get<std::string>()), it->string() + ": " + name,
                             nullptr);
    }
    break;
  }
  return options;
}

}  // namespace

CaptionStore::CaptionStore(fs::path dir, std::string caption_extension, bool recursive)
    : dir_(std::move(dir)), extension_(std::move(caption_extension)) {
  LS_CHECK(fs::is_directory(dir_), dir_.string(), ": no such folder; pass the folder that holds the images");
  canonical_dir_ = fs::canonical(dir_);
  for (const auto& path : caption_images(dir_.string(), recursive))
    images_.push_back(fs::path(path).lexically_relative(dir_).generic_string());  // links not resolved
  std::sort(images_.begin(), images_.end());
}

bool CaptionStore::leads_outside(const fs::path& file) const {
  return !core::resolves_below(canonical_dir_, file);
}

bool CaptionStore::has_image(const std::string& image) const {
  return std::binary_search(images_.begin(), images_.end(), image);
}

std::optional<fs::path> CaptionStore::image_file(const std::string& image) const {
  if (!has_image(image)) return std::nullopt;
  const fs::path file = dir_ / image;
  if (leads_outside(file)) return std::nullopt;
  return file;
}

std::vector<std::string> CaptionStore::images_with_probs() const {
  std::vector<std::string> out;
  for (const auto& [rel, probs] : read_tag_probs(dir_))
    if (has_image(rel)) out.push_back(rel);
  return out;
}

fs::path CaptionStore::caption_file(const std::string& image) const {
  LS_CHECK(std::binary_search(images_.begin(), images_.end(), image), dir_.string(), ": no image '", image,
           "' in this dataset");
  return (dir_ / image).replace_extension(extension_);
}

std::vector<CaptionEntry> CaptionStore::entries() const {
  std::vector<CaptionEntry> out;
  std::map<std::string, int> same_text;
  for (const auto& image : images_) {
    CaptionEntry e;
    e.image = image;
    const fs::path file = caption_file(image);
    e.caption_path = file.lexically_relative(dir_).generic_string();
    e.outside = leads_outside(dir_ / image) || leads_outside(file);
    if (e.outside) {
      out.push_back(std::move(e));
      continue;
    }
    e.text = read_caption_file(file);
    e.missing = !e.text;
    if (e.text) {
      e.hash = caption_hash(*e.text);
      e.tags = caption_tags(*e.text);
      e.empty = core::trim(*e.text).empty();
      if (!e.empty) ++same_text[core::trim(*e.text)];
    }
    out.push_back(std::move(e));
  }
  for (auto& e : out) e.duplicate = e.text && !e.empty && same_text[core::trim(*e.text)] > 1;
  return out;
}

std::map<std::string, int64_t> CaptionStore::tag_counts() const {
  std::map<std::string, int64_t> counts;
  for (const auto& e : entries()) {
    std::set<std::string> once(e.tags.begin(), e.tags.end());  // a tag twice in one caption counts once
    for (const auto& t : once) ++counts[t];
  }
  return counts;
}

SaveResult CaptionStore::save(const std::string& image, const std::string& text, const std::string& expected_hash) {
  const fs::path file = caption_file(image);
  LS_CHECK(!leads_outside(dir_ / image) && !leads_outside(file), file.string(),
           ": links outside the dataset folder; the editor neither reads nor writes it");
  SaveResult r;
  r.on_disk = read_caption_file(file);
  const std::string now = r.on_disk ? caption_hash(*r.on_disk) : "";
  if (now != expected_hash) {
    r.conflict = file.string() + ": changed on disk since it was loaded; nothing was saved";
    return r;
  }
  CaptionWriter writer(dir_, new_run_id(), "editor");
  r.saved = writer.write(file, text, r.on_disk);
  if (r.saved) r.run = writer.run();
  return r;
}

namespace {

struct PlannedChange {
  std::string image;
  fs::path file;
  std::optional<std::string> old_text;
  std::string text;
};

}  // namespace

// What `op` makes of each caption; only the ones that change.
static std::vector<PlannedChange> planned_changes(const CaptionStore& store, const BulkOp& op,
                                                  const std::vector<std::string>& images) {
  std::optional<BulkRegex> re;
  if (op.kind == BulkKind::kRegexReplace) re.emplace(op.find);
  std::map<std::string, ImageProbs> probs;
  SelectionOptions selection;
  if (op.kind == BulkKind::kRetag) {
    probs = read_tag_probs(store.dir());
    LS_CHECK(!probs.empty(), tag_probs_path(store.dir()).string(),
             ": no saved probabilities; run `lorastudio caption DIR --save-probs` first");
    // Below the floor the saved tags are not all there is (as `caption retag` refuses).
    LS_CHECK(op.general_threshold >= kSavedProbabilityFloor && op.character_threshold >= kSavedProbabilityFloor &&
                 op.general_threshold <= 1 && op.character_threshold <= 1,
             "retag: thresholds must lie in [", kSavedProbabilityFloor, ", 1] (lower probabilities were not saved)");
    selection = last_selection_options(store.dir());
    selection.general_threshold = op.general_threshold;
    selection.character_threshold = op.character_threshold;
  }
  const auto& targets = images.empty() ? store.images() : images;
  for (const auto& image : targets)  // every name checked before anything changes
    LS_CHECK(store.has_image(image), store.dir().string(), ": no image '", image, "' in this dataset");
  std::vector<PlannedChange> changes;
  const auto entries = store.entries();
  std::map<std::string, const CaptionEntry*> by_image;
  for (const auto& e : entries) by_image[e.image] = &e;
  for (const auto& image : targets) {
    const CaptionEntry& e = *by_image.at(image);
    if (e.outside) continue;
    PlannedChange c{image, store.dir() / e.caption_path, e.text, {}};
    if (op.kind == BulkKind::kRetag) {
      auto it = probs.find(image);
      if (it == probs.end()) continue;  // no saved probabilities: nothing to re-slice
      const TagSelector selector(saved_tag_list(it->second), selection);
      const Selection picked = selector.select(saved_probabilities(it->second));
      std::vector<std::string> names;
      for (const auto& t : picked.tags) names.push_back(t.name);
      c.text = merged_caption(ExistingMode::kOverwrite, e.text, selection.prefix, names, selection.caption_separator);
    } else {
      c.text = apply_bulk_op(op, e.text.value_or(""), re ? &*re : nullptr);
    }
    if (!e.text && c.text.empty()) continue;  // nothing to create
    if (e.text && *e.text == c.text) continue;
    changes.push_back(std::move(c));
  }
  return changes;
}

std::vector<BulkChange> CaptionStore::preview(const BulkOp& op, const std::vector<std::string>& images) const {
  std::vector<BulkChange> out;
  for (auto& c : planned_changes(*this, op, images)) out.push_back({c.image, std::move(c.text)});
  return out;
}

std::vector<std::string> CaptionStore::bulk(const BulkOp& op, const std::vector<std::string>& images,
                                            std::string* run, std::vector<BulkChange>* changes) {
  const auto planned = planned_changes(*this, op, images);
  CaptionWriter writer(dir_, new_run_id(), "editor bulk");
  std::vector<std::string> changed;
  for (const auto& c : planned) {
    // Read again just before writing: the history's old text is what the file held.
    if (writer.write(c.file, c.text, read_caption_file(c.file))) {
      changed.push_back(c.image);
      if (changes) changes->push_back({c.image, c.text});
    }
  }
  if (run) *run = changed.empty() ? "" : writer.run();
  return changed;
}

}  // namespace ls::caption
