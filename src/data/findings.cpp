// Severity names and the training gate over scan findings.
#include "data/findings.h"

#include <algorithm>
#include <iterator>

#include "core/error.h"

namespace ls::data {

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::kInfo: return "info";
    case Severity::kWarning: return "warning";
    case Severity::kError: return "error";
  }
  return "?";
}

size_t count_findings(const Findings& findings, Severity s) {
  return static_cast<size_t>(
      std::count_if(findings.begin(), findings.end(), [s](const Finding& f) { return f.severity == s; }));
}

void require_no_errors(const Findings& findings, const std::string& source) {
  const size_t errors = count_findings(findings, Severity::kError);
  if (errors == 0) return;
  const auto first = std::find_if(findings.begin(), findings.end(),
                                  [](const Finding& f) { return f.severity == Severity::kError; });
  // The others by name (a few: the message stays one readable line), so a user with a handful of
  // bad downloads can remove them without another command.
  constexpr size_t kNamed = 10;
  std::string others;
  size_t named = 0;
  for (auto it = std::next(first); it != findings.end() && named < kNamed; ++it)
    if (it->severity == Severity::kError) others += (named++ ? ", " : ": ") + (it->path.empty() ? it->code : it->path);
  if (errors - 1 > named) others += str_cat(", ...");
  LS_FAIL(first->message, errors > 1 ? str_cat(" (and ", errors - 1, " more problems", others, ")") : std::string(),
          "; run `lorastudio dataset check ", source, "` for the full list");
}

}  // namespace ls::data
