// Severity names and the training gate over scan findings.
#include "data/findings.h"

#include <algorithm>

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
  LS_FAIL(first->message, errors > 1 ? str_cat(" (and ", errors - 1, " more problems)") : std::string(),
          "; run `lorastudio dataset check ", source, "` for the full list");
}

}  // namespace ls::data
