// "Did you mean" for misspelt names (config keys, options): Levenshtein distance and the nearest
// candidate within a few edits. Shared by the dataset and training config readers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ls::core {

/// Levenshtein distance: insertions, deletions and substitutions count one each.
size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate nearest to `name` within `max_distance` edits (the first one on ties), or "".
std::string nearest_name(std::string_view name, const std::vector<std::string>& candidates,
                         size_t max_distance = 2);

/// " (did you mean 'x'?)" for the nearest candidate, or "" when none is near: the tail of an
/// "unknown key" error.
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace ls::core
