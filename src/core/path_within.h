// Containment of paths, for code that must not reach outside a folder the user named (the local
// servers, the caption editor): compared element by element, after resolving links.
#pragma once

#include <filesystem>

namespace ls::core {

/// True when `inner` is `outer` or lies below it, comparing whole path elements (no resolving:
/// pass canonical paths).
bool path_within(const std::filesystem::path& outer, const std::filesystem::path& inner);

/// True when `file`, with its links resolved (it need not exist), lies strictly below the
/// canonical folder `canonical_root`. False when it cannot be resolved.
bool resolves_below(const std::filesystem::path& canonical_root, const std::filesystem::path& file);

}  // namespace ls::core
