#include "caption/caption_store.h"

#include <algorithm>
#include <regex>
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

std::vector<std::string> caption_tags(const std::string& text) {
  std::vector<std::string> tags;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = std::min(text.find(',', start), text.size());
    std::string piece = core::trim(std::string_view(text).substr(start, comma - start));
    if (!piece.empty()) tags.push_back(piece);
    start = comma + 1;
  }
  return tags;
}

BulkKind parse_bulk_kind(const std::string& name) {
  static const std::pair<const char*, BulkKind> kKinds[] = {
      {"find_replace", BulkKind::kFindReplace}, {"regex_replace", BulkKind::kRegexReplace},
      {"add_prefix", BulkKind::kAddPrefix},     {"add_tag", BulkKind::kAddTag},
      {"rename_tag", BulkKind::kRenameTag},     {"remove_tags", BulkKind::kRemoveTags},
      {"dedupe", BulkKind::kDedupe},            {"sort_tags", BulkKind::kSortTags},
      {"retag", BulkKind::kRetag}};
  std::string known;
  for (const auto& [text, kind] : kKinds) {
    if (name == text) return kind;
    known += (known.empty() ? "" : ", ") + std::string(text);
  }
  LS_FAIL("unknown bulk operation '", name, "'; use one of ", known);
}

namespace {

std::string join_tags(const std::vector<std::string>& tags) {
  std::string s;
  for (const auto& t : tags) s += (s.empty() ? "" : ", ") + t;
  return s;
}

// The caption's text after one bulk operation (the final newline as the file had it).
std::string apply_op(const BulkOp& op, const std::string& text, const std::regex* re) {
  const bool newline = !text.empty() && text.back() == '\n';
  auto with_newline = [&](std::string s) { return newline ? s + "\n" : s; };
  switch (op.kind) {
    case BulkKind::kFindReplace: {
      if (op.find.empty()) return text;
      std::string out;
      size_t pos = 0;
      for (size_t hit; (hit = text.find(op.find, pos)) != std::string::npos; pos = hit + op.find.size())
        out += text.substr(pos, hit - pos) + op.replace;
      return out + text.substr(pos);
    }
    case BulkKind::kRegexReplace: return std::regex_replace(text, *re, op.replace);
    case BulkKind::kAddPrefix:
    case BulkKind::kAddTag: {
      auto tags = caption_tags(text);
      const std::string tag = core::trim(op.prefix);
      if (tag.empty() || std::find(tags.begin(), tags.end(), tag) != tags.end()) return text;
      tags.insert(op.kind == BulkKind::kAddPrefix ? tags.begin() : tags.end(), tag);
      return with_newline(join_tags(tags));
    }
    case BulkKind::kRenameTag: {
      const std::string from = core::trim(op.find), to = core::trim(op.replace);
      auto tags = caption_tags(text);
      if (from.empty() || std::find(tags.begin(), tags.end(), from) == tags.end()) return text;
      std::vector<std::string> renamed;
      bool has_to = false;  // the caption held both: keep the first of them only
      for (const auto& t : tags) {
        const std::string name = t == from ? to : t;
        if (name.empty()) continue;  // renamed to nothing: removed
        if (name == to) {
          if (has_to) continue;
          has_to = true;
        }
        renamed.push_back(name);
      }
      return with_newline(join_tags(renamed));
    }
    case BulkKind::kRemoveTags: {
      auto tags = caption_tags(text);
      std::set<std::string> drop;
      for (const auto& t : op.tags) drop.insert(core::trim(t));
      std::vector<std::string> kept;
      for (const auto& t : tags)
        if (!drop.count(t)) kept.push_back(t);
      return kept.size() == tags.size() ? text : with_newline(join_tags(kept));
    }
    case BulkKind::kDedupe: {
      std::vector<std::string> kept;
      std::set<std::string> seen;
      auto tags = caption_tags(text);
      for (const auto& t : tags)
        if (seen.insert(t).second) kept.push_back(t);
      return kept.size() == tags.size() ? text : with_newline(join_tags(kept));
    }
    case BulkKind::kSortTags: {
      auto tags = caption_tags(text);
      auto sorted = tags;
      std::sort(sorted.begin(), sorted.end());
      return sorted == tags ? text : with_newline(join_tags(sorted));
    }
    case BulkKind::kRetag: break;  // per image, from its saved probabilities (planned_changes)
  }
  return text;
}

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
  std::optional<std::regex> re;
  if (op.kind == BulkKind::kRegexReplace) {
    try {
      re.emplace(op.find, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      LS_FAIL("bulk replace: '", op.find, "' is not a valid regular expression (", e.what(), ")");
    }
  }
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
      c.text = apply_op(op, e.text.value_or(""), re ? &*re : nullptr);
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
