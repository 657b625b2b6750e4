// The regular expression of the caption editor's regex_replace (docs/captions.md): PCRE2 with a
// bounded amount of work per caption, so a pattern that backtracks without end (say "(a*)*b"
// over a long run of a's) is refused by name instead of holding the server for minutes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

struct pcre2_real_code_8;  // pcre2.h's compiled pattern, kept out of this header

namespace ls::caption {

/// Longest pattern a bulk replace accepts (a person types it; a bound on what a request costs).
inline constexpr size_t kMaxBulkRegexLength = 256;
/// Matching steps (PCRE2 auto-callouts: one per pattern item tried) one replace may take over
/// one caption, all its matches together: real patterns over a 1,000-byte caption take a few
/// thousand; an exponential one meets this within a fraction of a second.
inline constexpr uint64_t kMaxBulkRegexSteps = 1000000;

class BulkRegex {
 public:
  /// `pattern` in PCRE2's (Perl) syntax over UTF-8; ls::Error when invalid or too long.
  explicit BulkRegex(const std::string& pattern);

  /// `text` with every match of the pattern replaced: "$1" / "${1}" is a group, "$0" the whole
  /// match, "$$" a '$'; an unset group is empty. ls::Error for a bad replacement or when the
  /// caption needs more than kMaxBulkRegexSteps.
  std::string replace_all(const std::string& text, const std::string& replacement) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<pcre2_real_code_8> code_;
};

}  // namespace ls::caption
