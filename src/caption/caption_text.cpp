#include "caption/caption_text.h"

#include <set>

#include "caption/tag_selection.h"
#include "core/error.h"
#include "core/strings.h"

namespace ls::caption {

ExistingMode parse_existing_mode(const std::string& text, const std::string& flag) {
  if (text == "skip") return ExistingMode::kSkip;
  if (text == "overwrite") return ExistingMode::kOverwrite;
  if (text == "append") return ExistingMode::kAppend;
  if (text == "prepend") return ExistingMode::kPrepend;
  LS_FAIL(flag, " must be skip, overwrite, append or prepend, got '", text, "'");
}

namespace {
std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : separator) + p;
  return s;
}
}  // namespace

std::string merged_caption(ExistingMode mode, const std::optional<std::string>& old, const std::string& prefix,
                           const std::vector<std::string>& tags, const std::string& separator) {
  if (mode == ExistingMode::kOverwrite || !old) {
    std::vector<std::string> all;
    if (!prefix.empty()) all.push_back(prefix);
    all.insert(all.end(), tags.begin(), tags.end());
    return join(all, separator) + "\n";
  }
  std::string body = *old;
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ' || body.back() == '\t'))
    body.pop_back();
  std::set<std::string> have;
  const bool blank_separator = core::trim(separator).empty();
  if (!body.empty()) {
    if (blank_separator) {
      have.insert(core::trim(body));
    } else {
      for (const auto& t : split_tag_list(body, separator, true)) have.insert(t);
    }
  }
  std::vector<std::string> missing;
  for (const auto& t : tags)
    if (!have.count(core::trim(t))) missing.push_back(t), have.insert(core::trim(t));
  const bool add_prefix = !prefix.empty() && !have.count(core::trim(prefix));
  if (missing.empty() && !add_prefix) return *old;
  std::vector<std::string> parts;
  if (add_prefix) parts.push_back(prefix);
  if (mode == ExistingMode::kPrepend) parts.insert(parts.end(), missing.begin(), missing.end());
  if (!body.empty()) parts.push_back(body);
  if (mode == ExistingMode::kAppend) parts.insert(parts.end(), missing.begin(), missing.end());
  return join(parts, separator) + "\n";
}

}  // namespace ls::caption
