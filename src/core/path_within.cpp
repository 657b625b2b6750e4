#include "core/path_within.h"

#include <iterator>
#include <system_error>

namespace ls::core {

bool path_within(const std::filesystem::path& outer, const std::filesystem::path& inner) {
  auto o = outer.begin(), i = inner.begin();
  for (; o != outer.end(); ++o, ++i) {
    if (o->empty() && std::next(o) == outer.end()) break;  // a trailing separator
    if (i == inner.end() || *o != *i) return false;
  }
  return true;
}

bool resolves_below(const std::filesystem::path& canonical_root, const std::filesystem::path& file) {
  std::error_code ec;
  const auto resolved = std::filesystem::weakly_canonical(file, ec);
  return !ec && resolved != canonical_root && path_within(canonical_root, resolved);
}

}  // namespace ls::core
