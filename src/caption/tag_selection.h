// From one image's tag probabilities (after the sigmoid) to its caption, with the rules of
// kohya-ss/sd-scripts finetune/tag_images_by_wd14_tagger.py (fc40a279 for selected_tags.csv
// models; main 48d368fa intends the same) plus MCut from SmilingWolf's wd-tagger Space (app.py,
// mcut_threshold). No model and no torch: it also runs on probabilities saved earlier.
// tests/fixtures/tagger/make_selection_fixture.py runs kohya's code for the golden captions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "caption/selected_tags.h"
#include "core/key_table.h"

namespace ls::caption {

/// lorastudio's defaults: SmilingWolf's (the Space's sliders; issue 15). kohya's own default for
/// both is --thresh, 0.35 — so a kohya run without --character_threshold keeps characters at 0.35.
inline constexpr double kDefaultThresh = 0.35;
inline constexpr double kDefaultGeneralThreshold = 0.35;
inline constexpr double kDefaultCharacterThreshold = 0.85;
/// The Space never lets MCut put the character threshold below this.
inline constexpr double kCharacterMcutFloor = 0.15;

/// kohya's flags under kohya's names (selection_keys() is their table), plus lorastudio's
/// general_mcut, character_mcut, max_tags and prefix.
struct SelectionOptions {
  // Thresholds: a tag is kept when p >= threshold, compared in float32 as kohya's numpy does.
  std::optional<double> thresh;               // fallback for the two below
  std::optional<double> general_threshold;    // else thresh, else 0.35
  std::optional<double> character_threshold;  // else thresh, else 0.85 (kohya: else thresh, 0.35)
  // MCut instead of the fixed threshold, per image: the midpoint of the largest gap between the
  // category's probabilities sorted high to low; kept when p > cut. Characters: cut >= 0.15.
  bool general_mcut = false;
  bool character_mcut = false;
  // Names, prepared once per model in kohya's order: character_tag_expand, then remove_underscore,
  // then tag_replacement. undesired_tags and always_first_tags compare against the result.
  bool character_tag_expand = false;  // "name_(series)" -> "name" + caption_separator + "series"
  bool remove_underscore = false;     // '_' -> ' ' in names longer than 3 characters (kaomoji stay)
  std::string tag_replacement;        // "source,target;source,target", \, and \; escape
  std::string undesired_tags;         // split at caption_separator without its blanks
  std::string always_first_tags;      // the same split; each found tag moves to the front in turn
  // Order: general and character tags in model order (not by probability).
  bool character_tags_first = false;          // characters first (in reverse model order)
  bool use_rating_tags = false;               // the top rating first
  bool use_rating_tags_as_last_tag = false;   // the top rating last (use_rating_tags wins)
  std::string caption_separator = ", ";
  int64_t max_tags = 0;  // keep the first N tags of the final order; 0 = all
  std::string prefix;    // written before everything (trigger word); not a tag, not counted
};

/// The table of SelectionOptions: name (kohya's flag without --), type, help.
const core::KeyTable<SelectionOptions>& selection_keys();

/// kohya's fallbacks with lorastudio's defaults.
double effective_general_threshold(const SelectionOptions& options);
double effective_character_threshold(const SelectionOptions& options);

struct TagReplacement {
  std::string source, target;
};
/// "source1,target1;source2,target2" with `\,` and `\;` for literal ',' and ';' (another
/// backslash is itself). Errors: a pair without exactly one unescaped comma, an empty side.
std::vector<TagReplacement> parse_tag_replacement(std::string_view text);

/// kohya's list flags: `text` split at every `separator` with its surrounding blanks trimmed
/// (", " splits at ","); pieces that are blank are dropped, the others kept as written
/// (kohya trims undesired_tags' pieces, not always_first_tags'). ls::Error when the separator
/// is all blanks and the text is not empty.
std::vector<std::string> split_tag_list(std::string_view text, std::string_view separator, bool trim_pieces);

/// The Space's MCut over one category's probabilities, in float64; nullopt for fewer than two
/// (no gap to cut: the fixed threshold applies).
std::optional<double> mcut_threshold(std::vector<double> probabilities);

struct SelectedTag {
  std::string name;  // as written in the caption
  int64_t index = 0;  // model output = selected_tags.csv row
  int64_t category = 0;
  float probability = 0;
};

struct Selection {
  std::vector<SelectedTag> tags;  // caption order, after max_tags; the prefix is not among them
  std::string caption;            // prefix, then the tags, joined by caption_separator
};

/// One model's tag list with one set of options, prepared once; select() per image.
class TagSelector {
 public:
  /// Validates the options (one-line ls::Error for a malformed value) and prepares the names.
  TagSelector(const SelectedTags& tags, SelectionOptions options);

  /// probabilities: one per tag, in model output order. ls::Error for a wrong count or a NaN.
  Selection select(const float* probabilities, int64_t count) const;
  Selection select(const std::vector<float>& probabilities) const {
    return select(probabilities.data(), static_cast<int64_t>(probabilities.size()));
  }

  /// A tag's name after expansion, underscores and replacement.
  const std::string& output_name(int64_t index) const { return names_[index]; }
  const SelectionOptions& options() const { return options_; }

 private:
  SelectedTags tags_;
  SelectionOptions options_;
  std::vector<std::string> names_;
  std::vector<std::string> undesired_;     // sorted, for binary search
  std::vector<std::string> always_first_;  // as given
  float general_threshold_ = 0, character_threshold_ = 0;
};

/// kohya's --frequency_tags: how many captions each tag went into over a run.
class TagFrequency {
 public:
  void add(const Selection& selection);
  /// Count high to low; equal counts in the order first seen, as kohya's stable sort of its
  /// dict (within an image it counts general and character tags in model order, then the rating).
  std::vector<std::pair<std::string, int64_t>> sorted() const;

 private:
  std::vector<std::pair<std::string, int64_t>> counts_;  // first-seen order
  std::unordered_map<std::string, size_t> slot_;
};

}  // namespace ls::caption
