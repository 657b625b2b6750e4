// PCRE2 behind BulkRegex (see bulk_regex.h). The interpreter (no JIT) keeps its backtracking
// on the heap, bounded by the heap limit, so neither a deep pattern nor a long caption can
// overflow the stack as libstdc++'s recursive std::regex did; the step budget bounds time.
#include "caption/bulk_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"

namespace ls::caption {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(code, buffer, sizeof(buffer));
  return n < 0 ? "PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<const char*>(buffer), size_t(n));
}

// Backtracking frames of one match: far above what a caption needs, far below the machine.
constexpr uint32_t kBulkRegexHeapKiB = 16 * 1024;

struct StepBudget {
  uint64_t steps = 0;
};

// Called before each pattern item PCRE2 tries (PCRE2_AUTO_CALLOUT): a negative answer ends
// the whole substitution with that code.
int count_bulk_regex_step(pcre2_callout_block*, void* data) {
  auto* budget = static_cast<StepBudget*>(data);
  return ++budget->steps > kMaxBulkRegexSteps ? PCRE2_ERROR_CALLOUT : 0;
}

}  // namespace

BulkRegex::BulkRegex(const std::string& pattern) : pattern_(pattern) {
  LS_CHECK(pattern.size() <= kMaxBulkRegexLength, "bulk replace: the regular expression is ", pattern.size(),
           " characters; at most ", kMaxBulkRegexLength, " are accepted");
  int error = 0;
  PCRE2_SIZE offset = 0;
  // UTF-8 patterns; captions with invalid UTF-8 are still matched (those bytes match nothing).
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_AUTO_CALLOUT, &error, &offset, nullptr);
  LS_CHECK(code, "bulk replace: '", pattern, "' is not a valid regular expression (", pcre2_message(error),
           " at offset ", offset, ")");
  code_.reset(code, pcre2_code_free);
}

std::string BulkRegex::replace_all(const std::string& text, const std::string& replacement) const {
  std::unique_ptr<pcre2_match_context, decltype(&pcre2_match_context_free)> context(
      pcre2_match_context_create(nullptr), pcre2_match_context_free);
  LS_CHECK(context, "bulk replace: out of memory");
  pcre2_set_heap_limit(context.get(), kBulkRegexHeapKiB);
  StepBudget budget;
  pcre2_set_callout(context.get(), count_bulk_regex_step, &budget);
  const uint32_t options = PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_UNSET_EMPTY | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH;
  std::string out(text.size() * 2 + 64, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {  // the second with the length the first measured
    budget.steps = 0;
    PCRE2_SIZE length = out.size();
    const int rc = pcre2_substitute(code_.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, options,
                                    nullptr, context.get(), reinterpret_cast<PCRE2_SPTR>(replacement.data()),
                                    replacement.size(), reinterpret_cast<PCRE2_UCHAR*>(out.data()), &length);
    if (rc >= 0) {
      out.resize(length);
      return out;
    }
    if (rc == PCRE2_ERROR_NOMEMORY && attempt == 0) {
      out.assign(length, '\0');
      continue;
    }
    LS_CHECK(rc != PCRE2_ERROR_CALLOUT, "bulk replace: '", pattern_, "' needs more than ", kMaxBulkRegexSteps,
             " matching steps on a caption of ", text.size(), " bytes (it backtracks without end); simplify the pattern");
    LS_CHECK(rc != PCRE2_ERROR_HEAPLIMIT, "bulk replace: '", pattern_, "' needs more than ", kBulkRegexHeapKiB / 1024,
             " MiB to match a caption of ", text.size(), " bytes; simplify the pattern");
    // Replacement syntax errors ("$x", "${1", a group the pattern lacks) come here too.
    LS_FAIL("bulk replace: '", pattern_, "' -> '", replacement, "' cannot be applied (", pcre2_message(rc), ")");
  }
  LS_FAIL("bulk replace: the replaced caption did not fit the length PCRE2 asked for");
}

}  // namespace ls::caption
