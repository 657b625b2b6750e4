// The caption editor's bulk operations (docs/captions.md): their names, their options and what
// one does to one caption's text. Pure text functions: the store (caption_store.h) applies them
// to files, the server (caption_requests.h) reads them from a request, the fuzz target runs them.
#pragma once

#include <string>
#include <vector>

#include "caption/bulk_regex.h"

namespace ls::caption {

/// `text` split at ',' with the blanks around each piece trimmed; empty pieces dropped.
std::vector<std::string> caption_tags(const std::string& text);

enum class BulkKind {
  kFindReplace, kRegexReplace,  // text: find -> replace (plain, or a PCRE2 regex with $1)
  kAddPrefix, kAddTag,          // tag `prefix` put first / last unless the caption holds it
  kRenameTag,                   // whole tag find -> replace; one left when the caption had both
  kRemoveTags,                  // every tag in `tags`
  kDedupe, kSortTags,
  kRetag,                       // the saved tagger probabilities at new thresholds (tag_probs.h)
};

/// "find_replace", "regex_replace", "add_prefix", "add_tag", "rename_tag", "remove_tags",
/// "dedupe", "sort_tags", "retag"; ls::Error naming the known ones otherwise.
BulkKind parse_bulk_kind(const std::string& name);

struct BulkOp {
  BulkKind kind = BulkKind::kFindReplace;
  std::string find, replace;       // find/replace, regex, rename_tag (from -> to)
  std::string prefix;              // add_prefix, add_tag
  std::vector<std::string> tags;   // remove_tags
  // retag: the selection options of the folder's last `caption` run with these thresholds.
  double general_threshold = 0.35, character_threshold = 0.85;
};

struct BulkChange {
  std::string image;
  std::string text;  // the new caption
};

/// The caption's text after `op` (the final newline kept as the text had it). `re`: the compiled
/// `op.find` for regex_replace; retag is per image, so it returns `text`. ls::Error when the
/// regex cannot be applied (bulk_regex.h).
std::string apply_bulk_op(const BulkOp& op, const std::string& text, const BulkRegex* re);

}  // namespace ls::caption
