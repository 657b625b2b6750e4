// What a dataset scan noticed about files and folders. A scan records problems instead of
// throwing, so that `dataset check` can list them all; training refuses to start when any of
// them is an error (require_no_errors).
#pragma once

#include <string>
#include <vector>

namespace ls::data {

enum class Severity { kInfo, kWarning, kError };

struct Finding {
  Severity severity = Severity::kWarning;
  std::string code;     // stable identifier for scripts: "unreadable_image", "empty_caption", ...
  std::string path;     // the file or folder concerned
  std::string message;  // one line: what is wrong and what to do
};

using Findings = std::vector<Finding>;

const char* severity_name(Severity s);
size_t count_findings(const Findings& findings, Severity s);

/// Throws ls::Error naming the first error and how many there are, pointing to `dataset check`.
void require_no_errors(const Findings& findings, const std::string& source);

}  // namespace ls::data
