// The caption editor's bulk operations on one caption's text (see caption_bulk.h).
#include "caption/caption_bulk.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/strings.h"

namespace ls::caption {

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

std::string bulk_join_tags(const std::vector<std::string>& tags) {
  std::string s;
  for (const auto& t : tags) s += (s.empty() ? "" : ", ") + t;
  return s;
}

}  // namespace

// The caption's text after one bulk operation (the final newline as the file had it).
std::string apply_bulk_op(const BulkOp& op, const std::string& text, const BulkRegex* re) {
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
    case BulkKind::kRegexReplace:
      return re ? re->replace_all(text, op.replace) : text;
    case BulkKind::kAddPrefix:
    case BulkKind::kAddTag: {
      // `prefix` may name several tags ("masterpiece, best quality"): each one the caption lacks
      // is added, in order, so adding twice changes nothing the second time.
      auto tags = caption_tags(text);
      std::vector<std::string> missing;
      for (const auto& t : caption_tags(op.prefix))
        if (std::find(tags.begin(), tags.end(), t) == tags.end() && std::find(missing.begin(), missing.end(), t) == missing.end())
          missing.push_back(t);
      if (missing.empty()) return text;
      tags.insert(op.kind == BulkKind::kAddPrefix ? tags.begin() : tags.end(), missing.begin(), missing.end());
      return with_newline(bulk_join_tags(tags));
    }
    case BulkKind::kRenameTag: {
      // `to` may be several tags (or none: the tag is removed); a tag the caption already held
      // and the rename brings again is kept once, at its first place.
      const std::string from = core::trim(op.find);
      const auto to = caption_tags(op.replace);
      const std::set<std::string> to_set(to.begin(), to.end());
      auto tags = caption_tags(text);
      if (from.empty() || std::find(tags.begin(), tags.end(), from) == tags.end()) return text;
      std::vector<std::string> renamed;
      std::set<std::string> placed;
      for (const auto& t : tags) {
        if (t == from) {
          for (const auto& name : to)
            if (placed.insert(name).second) renamed.push_back(name);
        } else if (!to_set.count(t) || placed.insert(t).second) {
          renamed.push_back(t);
        }
      }
      return with_newline(bulk_join_tags(renamed));
    }
    case BulkKind::kRemoveTags: {
      auto tags = caption_tags(text);
      std::set<std::string> drop;
      for (const auto& t : op.tags) drop.insert(core::trim(t));
      std::vector<std::string> kept;
      for (const auto& t : tags)
        if (!drop.count(t)) kept.push_back(t);
      return kept.size() == tags.size() ? text : with_newline(bulk_join_tags(kept));
    }
    case BulkKind::kDedupe: {
      std::vector<std::string> kept;
      std::set<std::string> seen;
      auto tags = caption_tags(text);
      for (const auto& t : tags)
        if (seen.insert(t).second) kept.push_back(t);
      return kept.size() == tags.size() ? text : with_newline(bulk_join_tags(kept));
    }
    case BulkKind::kSortTags: {
      auto tags = caption_tags(text);
      auto sorted = tags;
      std::sort(sorted.begin(), sorted.end());
      return sorted == tags ? text : with_newline(bulk_join_tags(sorted));
    }
    case BulkKind::kRetag: break;  // per image, from its saved probabilities (planned_changes)
  }
  return text;
}

}  // namespace ls::caption
