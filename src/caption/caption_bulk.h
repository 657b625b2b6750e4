// The caption editor's bulk operations (docs/captions.md): their names, their options and what
// one does to one caption's text. Pure text functions: the store (caption_store.h) applies them
// to files, the server (caption_requests.h) reads them from a request, the fuzz target runs them.
#pragma once

#include <regex>
#include <string>
#include <vector>

namespace ls::caption {

/// `text` split at ',' with the blanks around each piece trimmed; empty pieces dropped.
std::vector<std::string> caption_tags(const std::string& text);

enum class BulkKind {
  kFindReplace, kRegexReplace,  // text: find -> replace (plain, or ECMAScript regex with $1)
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
/// `op.find` for regex_replace (compile_bulk_regex); retag is per image, so it returns `text`.
/// ls::Error when a regex cannot be matched (over kMaxRegexCaptionBytes, or libstdc++ gives up).
std::string apply_bulk_op(const BulkOp& op, const std::string& text, const std::regex* re);

/// Longest regular expression a bulk replace accepts, and longest caption it is matched against:
/// libstdc++ compiles and matches by recursion, one level per nesting / per character, and on an
/// 8 MiB thread stack "(a|b)*" over 20,000 characters (or a regex nested ~50,000 deep) crashes
/// the process. Real captions are under 1,000 bytes (225 CLIP tokens).
inline constexpr size_t kMaxBulkRegexLength = 256;
inline constexpr size_t kMaxRegexCaptionBytes = 4096;
/// `pattern` as an ECMAScript regex; ls::Error when it is invalid or too long.
std::regex compile_bulk_regex(const std::string& pattern);

}  // namespace ls::caption
