// A WD14 tagger's label list: the model folder's selected_tags.csv (SmilingWolf's hub layout,
// header tag_id,name,category,count, one row per model output in output order), read as RFC 4180
// CSV the way Python's csv.reader reads it for kohya-ss/sd-scripts
// finetune/tag_images_by_wd14_tagger.py and pandas for SmilingWolf's wd-tagger Space.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ls::caption {

/// Danbooru's category numbers as the CSV writes them. kohya (and the Space) use 9, 0 and 4 only;
/// other numbers (1 artist, 3 copyright, 5 meta) are kept in `other` and never reach a caption.
inline constexpr int64_t kRatingCategory = 9;
inline constexpr int64_t kGeneralCategory = 0;
inline constexpr int64_t kCharacterCategory = 4;

struct SelectedTags {
  std::vector<std::string> names;   // as in the file (underscores and all), model output order
  std::vector<int64_t> categories;  // per name
  std::vector<int64_t> tag_ids;     // per name; -1 when the file has no tag_id column
  // Row (= model output) indices per category, ascending.
  std::vector<int64_t> rating, general, character, other;

  int64_t size() const { return static_cast<int64_t>(names.size()); }
};

/// Parses the CSV text; `name_for_errors` is the file's path. Columns are found by header name
/// (`name` and `category` required, `tag_id` read when present, others ignored); a UTF-8 BOM and
/// blank lines are skipped. Errors name the file and line: a missing column, a row whose field
/// count differs from the header's, a category or tag_id that is not a whole number, an empty
/// name, an unterminated quote, text after a closing quote, invalid UTF-8.
SelectedTags parse_selected_tags(std::string_view csv_text, const std::string& name_for_errors);

/// Reads `path`: the CSV itself, or a model folder holding selected_tags.csv.
SelectedTags read_selected_tags(const std::string& path);

}  // namespace ls::caption
