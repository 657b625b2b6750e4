// What a caption file holds after lorastudio tags its image, given what it held before:
// kohya's overwrite (its only mode), or lorastudio's append / prepend, which add only the tags the
// file does not have yet so a hand-written caption keeps its words and order.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ls::caption {

enum class ExistingMode { kSkip, kOverwrite, kAppend, kPrepend };

/// "skip", "overwrite", "append", "prepend"; ls::Error naming `flag` otherwise.
ExistingMode parse_existing_mode(const std::string& text, const std::string& flag);

/// The new file content. `prefix` (the trigger word) and `tags` are the selection's, in order;
/// `old` the file's text or none. Overwrite (and any mode without an old file): prefix and tags
/// joined by `separator`, plus the final newline kohya writes. Append / prepend: the old text
/// (trailing blanks and newlines removed) with the tags it lacks after / before it — compared
/// after trimming blanks, the old text split at the separator without its blanks — and the prefix
/// moved to the front if the old text lacks it. Returns the old text unchanged when nothing is
/// missing. kSkip is the caller's business (it never gets here).
std::string merged_caption(ExistingMode mode, const std::optional<std::string>& old, const std::string& prefix,
                           const std::vector<std::string>& tags, const std::string& separator);

}  // namespace ls::caption
