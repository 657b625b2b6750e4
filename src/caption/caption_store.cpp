#include "caption/caption_store.h"

#include <algorithm>
#include <regex>
#include <set>

#include "caption/caption_history.h"
#include "caption/caption_run.h"
#include "core/error.h"
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
    case BulkKind::kAddPrefix: {
      auto tags = caption_tags(text);
      if (std::find(tags.begin(), tags.end(), core::trim(op.prefix)) != tags.end()) return text;
      tags.insert(tags.begin(), core::trim(op.prefix));
      return with_newline(join_tags(tags));
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
  }
  return text;
}

}  // namespace

CaptionStore::CaptionStore(fs::path dir, std::string caption_extension, bool recursive)
    : dir_(std::move(dir)), extension_(std::move(caption_extension)) {
  LS_CHECK(fs::is_directory(dir_), dir_.string(), ": no such folder; pass the folder that holds the images");
  for (const auto& path : caption_images(dir_.string(), recursive))
    images_.push_back(fs::relative(path, dir_).generic_string());
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
    e.caption_path = fs::relative(file, dir_).generic_string();
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

std::vector<std::string> CaptionStore::bulk(const BulkOp& op, const std::vector<std::string>& images,
                                            std::string* run) {
  std::optional<std::regex> re;
  if (op.kind == BulkKind::kRegexReplace) {
    try {
      re.emplace(op.find, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      LS_FAIL("bulk replace: '", op.find, "' is not a valid regular expression (", e.what(), ")");
    }
  }
  const auto& targets = images.empty() ? images_ : images;
  for (const auto& image : targets) caption_file(image);  // every name checked before anything changes
  CaptionWriter writer(dir_, new_run_id(), "editor bulk");
  std::vector<std::string> changed;
  for (const auto& image : targets) {
    const fs::path file = caption_file(image);
    auto old = read_caption_file(file);
    std::string text = apply_op(op, old.value_or(""), re ? &*re : nullptr);
    if (!old && text.empty()) continue;  // nothing to create
    if (writer.write(file, text, old)) changed.push_back(image);
  }
  if (run) *run = changed.empty() ? "" : writer.run();
  return changed;
}

}  // namespace ls::caption
