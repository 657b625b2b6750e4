// Tag selection with kohya's rules; see tag_selection.h. Line references are to kohya-ss/sd-scripts
// finetune/tag_images_by_wd14_tagger.py at fc40a279 (the selected_tags.csv path; main 48d368fa has
// the same rules, with two regressions the fixture script describes).
#include "caption/tag_selection.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "core/error.h"
#include "core/strings.h"

namespace ls::caption {
namespace {

// Python's len() of a str: code points, i.e. the bytes that do not continue a UTF-8 sequence.
int64_t code_points(std::string_view s) {
  int64_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// --character_tag_expand: "chara_(series)" -> "chara" + separator + "series" and
// "chara_(costume)_(series)" -> "chara_(costume)" + separator + "series": everything before the
// last '(' loses one trailing '_'; what follows it loses every ')'. Only names ending in ')'.
std::string expand_character(const std::string& tag, const std::string& separator) {
  if (tag.empty() || tag.back() != ')') return tag;
  const size_t open = tag.rfind('(');
  std::string name = open == std::string::npos ? std::string() : tag.substr(0, open);
  std::string series = open == std::string::npos ? tag : tag.substr(open + 1);
  if (!name.empty() && name.back() == '_') name.pop_back();
  series.erase(std::remove(series.begin(), series.end(), ')'), series.end());
  return name + separator + series;
}

// --remove_underscore: kohya's whole kaomoji rule is the length test, so "^_^", "o_o" and ">_<"
// keep their underscores while a longer one such as "(o)_(o)" loses it (the Space, by contrast,
// keeps a list of 19 kaomoji).
std::string without_underscores(std::string tag) {
  if (code_points(tag) > 3) std::replace(tag.begin(), tag.end(), '_', ' ');
  return tag;
}

// One category's threshold for one image: kohya's fixed one (p >= t in float32, as numpy 2 compares
// a float32 with a Python float), or the Space's MCut (p > t in float64, as it upcasts first).
struct Cut {
  bool mcut = false;
  float fixed = 0;
  double cut = 0;
  bool keeps(float p) const { return mcut ? static_cast<double>(p) > cut : p >= fixed; }
};

Cut category_cut(const float* p, const std::vector<int64_t>& rows, bool use_mcut, float fixed, double floor) {
  Cut c;
  c.fixed = fixed;
  if (!use_mcut) return c;
  std::vector<double> values;
  values.reserve(rows.size());
  for (const int64_t r : rows) values.push_back(p[r]);
  if (const std::optional<double> t = mcut_threshold(std::move(values))) {
    c.mcut = true;
    c.cut = std::max(floor, *t);
  }
  return c;
}

float threshold_as_float(double t, const char* name) {
  LS_CHECK(std::isfinite(t), name, " must be a finite number, got ", t);
  return static_cast<float>(t);
}

}  // namespace

const core::KeyTable<SelectionOptions>& selection_keys() {
  using O = SelectionOptions;
  static const core::KeyTable<O> table({
      core::field_key("thresh", &O::thresh, "Threshold for general and character tags without their own (kohya: 0.35)"),
      core::field_key("general_threshold", &O::general_threshold, "Keep general tags with p >= this (default: thresh, else 0.35)"),
      core::field_key("character_threshold", &O::character_threshold,
                      "Keep character tags with p >= this (default: thresh, else 0.85; kohya: thresh); above 1 = none"),
      core::field_key("general_mcut", &O::general_mcut, "General tags: MCut threshold per image instead (SmilingWolf's Space)"),
      core::field_key("character_mcut", &O::character_mcut, "Character tags: MCut threshold per image, at least 0.15"),
      core::field_key("character_tag_expand", &O::character_tag_expand,
                      "Write character tags name_(series) as two: name, series"),
      core::field_key("remove_underscore", &O::remove_underscore,
                      "Underscores to spaces in tags longer than 3 characters (kaomoji such as ^_^ stay)"),
      core::field_key("tag_replacement", &O::tag_replacement,
                      "Replace tags: source1,target1;source2,target2 (\\, and \\; escape); after expansion and underscores"),
      core::field_key("undesired_tags", &O::undesired_tags, "Tags never written, separated by caption_separator"),
      core::field_key("always_first_tags", &O::always_first_tags,
                      "Tags moved to the front when present, separated by caption_separator (the last one ends up first)"),
      core::field_key("character_tags_first", &O::character_tags_first, "Character tags before general tags"),
      core::field_key("use_rating_tags", &O::use_rating_tags, "Write the most likely rating tag first"),
      core::field_key("use_rating_tags_as_last_tag", &O::use_rating_tags_as_last_tag, "Write the most likely rating tag last"),
      core::field_key("caption_separator", &O::caption_separator, "Text between tags (kohya: \", \")"),
      core::within(core::field_key("max_tags", &O::max_tags, "Keep at most this many tags per caption (0 = all; prefix not counted)"), 0),
      core::field_key("prefix", &O::prefix, "Text written before the tags, e.g. a trigger word (not a tag: never counted)"),
  });
  return table;
}

double effective_general_threshold(const SelectionOptions& o) {
  return o.general_threshold.value_or(o.thresh.value_or(kDefaultGeneralThreshold));
}

double effective_character_threshold(const SelectionOptions& o) {
  return o.character_threshold.value_or(o.thresh.value_or(kDefaultCharacterThreshold));
}

std::vector<TagReplacement> parse_tag_replacement(std::string_view text) {
  if (text.empty()) return {};
  // Scanning once with the escapes equals kohya's `\,` -> "@@@@", `\;` -> "####" substitution
  // followed by the splits, without its clash with tags that contain "@@@@".
  struct Pair {
    std::vector<std::string> fields{std::string()};
    std::string raw;
  };
  std::vector<Pair> pairs(1);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size() && (text[i + 1] == ',' || text[i + 1] == ';')) {
      pairs.back().fields.back() += text[i + 1];
      pairs.back().raw += text.substr(i, 2);
      ++i;
    } else if (c == ';') {
      pairs.emplace_back();
    } else {
      if (c == ',') {
        pairs.back().fields.emplace_back();
      } else {
        pairs.back().fields.back() += c;
      }
      pairs.back().raw += c;
    }
  }
  std::vector<TagReplacement> out;
  for (size_t k = 0; k < pairs.size(); ++k) {
    const Pair& p = pairs[k];
    LS_CHECK(p.fields.size() == 2, "tag_replacement: pair ", k + 1, " '", p.raw,
             "' must be source,target with one comma (write a comma inside a tag as \\, and a semicolon as \\;)");
    LS_CHECK(!p.fields[0].empty() && !p.fields[1].empty(), "tag_replacement: pair ", k + 1, " '", p.raw,
             "' has an empty side (to drop a tag, use undesired_tags)");
    out.push_back({p.fields[0], p.fields[1]});
  }
  return out;
}

std::vector<std::string> split_tag_list(std::string_view text, std::string_view separator, bool trim_pieces) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  const std::string sep = core::trim(separator);
  LS_CHECK(!sep.empty(), "caption_separator '", separator,
           "' is only blanks, and undesired_tags/always_first_tags are split at it without them: use a visible separator");
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view piece = text.substr(start, end - start);
    std::string trimmed = core::trim(piece);
    if (!trimmed.empty()) out.push_back(trim_pieces ? std::move(trimmed) : std::string(piece));
    start = end + sep.size();
  }
  return out;
}

std::optional<double> mcut_threshold(std::vector<double> p) {
  if (p.size() < 2) return std::nullopt;
  std::sort(p.begin(), p.end(), std::greater<>());
  size_t at = 0;  // the first of equal widest gaps, as numpy's argmax
  for (size_t k = 1; k + 1 < p.size(); ++k)
    if (p[k] - p[k + 1] > p[at] - p[at + 1]) at = k;
  return (p[at] + p[at + 1]) / 2;
}

TagSelector::TagSelector(const SelectedTags& tags, SelectionOptions options)
    : tags_(tags), options_(std::move(options)) {
  const SelectionOptions& o = options_;
  LS_CHECK(!o.caption_separator.empty(), "caption_separator: empty; kohya's default is \", \"");
  LS_CHECK(o.max_tags >= 0, "max_tags must be 0 (all) or more, got ", o.max_tags);
  general_threshold_ = threshold_as_float(effective_general_threshold(o), "general_threshold");
  character_threshold_ = threshold_as_float(effective_character_threshold(o), "character_threshold");
  const std::vector<TagReplacement> replacements = parse_tag_replacement(o.tag_replacement);
  undesired_ = split_tag_list(o.undesired_tags, o.caption_separator, true);
  std::sort(undesired_.begin(), undesired_.end());
  always_first_ = split_tag_list(o.always_first_tags, o.caption_separator, false);

  // Names once per model, in kohya's order (lines 183-217): expansion, underscores, replacement.
  names_ = tags_.names;
  if (o.character_tag_expand)
    for (const int64_t i : tags_.character) names_[i] = expand_character(names_[i], o.caption_separator);
  if (o.remove_underscore)
    for (std::string& name : names_) name = without_underscores(std::move(name));
  // Each pair renames the first general tag of that name, else the first character tag, else the
  // first rating tag; later pairs see earlier results ("a,b;b,c" turns a into c).
  for (const TagReplacement& r : replacements) {
    for (const std::vector<int64_t>* rows : {&tags_.general, &tags_.character, &tags_.rating}) {
      const auto it = std::find_if(rows->begin(), rows->end(), [&](int64_t i) { return names_[i] == r.source; });
      if (it != rows->end()) {
        names_[*it] = r.target;
        break;
      }
    }
  }
}

Selection TagSelector::select(const float* p, int64_t count) const {
  LS_CHECK(count == tags_.size(), "tag probabilities: ", count, " values for ", tags_.size(),
           " tags (the model and its selected_tags.csv disagree)");
  for (int64_t i = 0; i < count; ++i)
    LS_CHECK(!std::isnan(p[i]), "tag probabilities: NaN for '", tags_.names[i], "' (index ", i, ")");
  const SelectionOptions& o = options_;
  const Cut general = category_cut(p, tags_.general, o.general_mcut, general_threshold_,
                                   -std::numeric_limits<double>::infinity());
  const Cut character = category_cut(p, tags_.character, o.character_mcut, character_threshold_, kCharacterMcutFloor);
  const auto undesired = [&](const std::string& name) {
    return std::binary_search(undesired_.begin(), undesired_.end(), name);
  };
  const auto tag = [&](int64_t i) { return SelectedTag{names_[i], i, tags_.categories[i], p[i]}; };

  // Lines 255-272: model order, characters appended or each put in front.
  std::vector<SelectedTag> out;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t category = tags_.categories[i];
    if (category == kGeneralCategory) {
      if (general.keeps(p[i]) && !undesired(names_[i])) out.push_back(tag(i));
    } else if (category == kCharacterCategory) {
      if (!character.keeps(p[i]) || undesired(names_[i])) continue;
      if (o.character_tags_first) {
        out.insert(out.begin(), tag(i));
      } else {
        out.push_back(tag(i));
      }
    }
  }
  // Lines 274-287: the most likely rating (the first of equals), first or last.
  if ((o.use_rating_tags || o.use_rating_tags_as_last_tag) && !tags_.rating.empty()) {
    int64_t best = tags_.rating.front();
    for (const int64_t r : tags_.rating)
      if (p[r] > p[best]) best = r;
    if (!undesired(names_[best])) {
      if (o.use_rating_tags) {
        out.insert(out.begin(), tag(best));
      } else {
        out.push_back(tag(best));
      }
    }
  }
  // Lines 289-295: each listed tag present moves to the front, in list order.
  for (const std::string& first : always_first_) {
    const auto it = std::find_if(out.begin(), out.end(), [&](const SelectedTag& t) { return t.name == first; });
    if (it == out.end()) continue;
    SelectedTag moved = std::move(*it);
    out.erase(it);
    out.insert(out.begin(), std::move(moved));
  }
  if (o.max_tags > 0 && static_cast<int64_t>(out.size()) > o.max_tags) out.resize(o.max_tags);

  Selection s;
  s.caption = o.prefix;
  for (const SelectedTag& t : out) s.caption += (s.caption.empty() ? "" : o.caption_separator) + t.name;
  s.tags = std::move(out);
  return s;
}

void TagFrequency::add(const Selection& selection) {
  std::vector<const SelectedTag*> counted;
  for (const SelectedTag& t : selection.tags) counted.push_back(&t);
  std::stable_sort(counted.begin(), counted.end(), [](const SelectedTag* a, const SelectedTag* b) {
    const bool ra = a->category == kRatingCategory, rb = b->category == kRatingCategory;
    return ra != rb ? rb : a->index < b->index;
  });
  for (const SelectedTag* t : counted) {
    const auto [it, fresh] = slot_.emplace(t->name, counts_.size());
    if (fresh) counts_.emplace_back(t->name, 0);
    ++counts_[it->second].second;
  }
}

std::vector<std::pair<std::string, int64_t>> TagFrequency::sorted() const {
  std::vector<std::pair<std::string, int64_t>> out = counts_;
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

}  // namespace ls::caption
