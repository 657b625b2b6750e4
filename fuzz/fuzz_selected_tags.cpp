// libFuzzer target for the WD14 tagger's label list reader (caption/selected_tags.cpp): any byte
// string must parse or throw ls::Error. What a parse promises the tagger (tag_selection.cpp indexes
// the model's outputs with it): one category and one tag_id per name, no empty name, every name
// valid UTF-8, and the rating/general/character/other index lists ascending, disjoint, covering
// every row once and each holding only rows of its category.
// Built and run by scripts/fuzz (no torch).
// fuzz-what: selected_tags.csv reader (WD14 tagger labels)
// fuzz-sources: src/caption/selected_tags.cpp src/core/strings.cpp src/core/utf8.cpp src/core/atomic_file.cpp
// fuzz-max-len: 4096
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "caption/selected_tags.h"
#include "core/error.h"
#include "core/utf8.h"

namespace {

// `rows` ascending, each in range, its category matching `is_category`; marks them in `seen`.
bool fz_tags_index_ok(const ls::caption::SelectedTags& tags, const std::vector<int64_t>& rows,
                      std::vector<int>& seen, bool (*is_category)(int64_t)) {
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t r = rows[i];
    if (r < 0 || r >= tags.size() || (i > 0 && rows[i - 1] >= r)) return false;
    if (!is_category(tags.categories[static_cast<size_t>(r)])) return false;
    ++seen[static_cast<size_t>(r)];
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ls::caption::SelectedTags tags;
  try {
    tags = ls::caption::parse_selected_tags(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.csv");
  } catch (const ls::Error&) {
    return 0;
  }
  const size_t n = tags.names.size();
  if (n == 0 || tags.categories.size() != n || tags.tag_ids.size() != n) __builtin_trap();
  for (const auto& name : tags.names)
    if (name.empty() || !ls::core::is_valid_utf8(name)) __builtin_trap();
  using ls::caption::kCharacterCategory;
  using ls::caption::kGeneralCategory;
  using ls::caption::kRatingCategory;
  std::vector<int> seen(n, 0);
  if (!fz_tags_index_ok(tags, tags.rating, seen, [](int64_t c) { return c == kRatingCategory; }) ||
      !fz_tags_index_ok(tags, tags.general, seen, [](int64_t c) { return c == kGeneralCategory; }) ||
      !fz_tags_index_ok(tags, tags.character, seen, [](int64_t c) { return c == kCharacterCategory; }) ||
      !fz_tags_index_ok(tags, tags.other, seen, [](int64_t c) {
        return c != kRatingCategory && c != kGeneralCategory && c != kCharacterCategory;
      }))
    __builtin_trap();
  for (int s : seen)
    if (s != 1) __builtin_trap();
  return 0;
}
