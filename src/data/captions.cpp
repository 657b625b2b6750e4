// Caption processing and caption files, reproducing kohya-ss/sd-scripts library/train_util.py
// (BaseDataset.process_caption, DreamBoothDataset.read_caption). Python's str.strip (Unicode
// whitespace), str.split(sep) (empty pieces kept) and the order of the random draws are kept,
// so that a seeded run draws what the same decisions need, tag for tag.
#include "data/captions.h"

#include <algorithm>
#include <filesystem>
#include <string_view>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "text/unicode.h"

namespace ls::data {
namespace {

using text::py_strip;

// Python str.split(sep): every piece, empty ones included ("a,,b" -> "a", "", "b").
std::vector<std::string> py_split(std::string_view s, std::string_view sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t pos; (pos = s.find(sep, start)) != std::string_view::npos; start = pos + sep.size()) {
    parts.emplace_back(s.substr(start, pos - start));
  }
  parts.emplace_back(s.substr(start));
  return parts;
}

// kohya's [t.strip() for t in part.split(sep) if t.strip()] (the keep_tokens_separator branch).
std::vector<std::string> stripped_nonempty(std::string_view part, std::string_view sep) {
  std::vector<std::string> tokens;
  for (const std::string& piece : py_split(part, sep)) {
    std::string token = py_strip(piece);
    if (!token.empty()) tokens.push_back(std::move(token));
  }
  return tokens;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// Fixed / flexible / fixed-suffix split, shuffle, tag dropout, ", " join.
std::string shuffle_and_drop_tags(const std::string& caption, const CaptionOptions& o, core::Rng& rng) {
  std::vector<std::string> fixed, flex, fixed_suffix;
  const std::string& keep_sep = o.keep_tokens_separator;
  const size_t keep_pos = keep_sep.empty() ? std::string::npos : caption.find(keep_sep);
  if (keep_pos != std::string::npos) {
    // "fixed ||| flexible ||| suffix": keep_tokens is ignored; empty tags are dropped here.
    std::string_view flex_part = std::string_view(caption).substr(keep_pos + keep_sep.size());
    const size_t suffix_pos = flex_part.find(keep_sep);
    if (suffix_pos != std::string_view::npos) {
      fixed_suffix = stripped_nonempty(flex_part.substr(suffix_pos + keep_sep.size()), o.caption_separator);
      flex_part = flex_part.substr(0, suffix_pos);
    }
    fixed = stripped_nonempty(std::string_view(caption).substr(0, keep_pos), o.caption_separator);
    flex = stripped_nonempty(flex_part, o.caption_separator);
  } else {
    // kohya keeps empty tags in this branch: "a,,b" joins back as "a, , b".
    for (const std::string& piece : py_split(py_strip(caption), o.caption_separator)) {
      flex.push_back(py_strip(piece));
    }
    if (o.keep_tokens > 0) {
      const size_t keep = std::min(flex.size(), static_cast<size_t>(o.keep_tokens));
      fixed.assign(flex.begin(), flex.begin() + static_cast<std::ptrdiff_t>(keep));
      flex.erase(flex.begin(), flex.begin() + static_cast<std::ptrdiff_t>(keep));
    }
  }
  if (o.shuffle_caption) rng.shuffle(flex);
  if (o.caption_tag_dropout_rate > 0) {
    std::vector<std::string> kept;
    for (std::string& tag : flex) {
      if (rng.uniform() >= o.caption_tag_dropout_rate) kept.push_back(std::move(tag));
    }
    flex = std::move(kept);
  }
  std::string out;
  bool first = true;
  for (const auto* group : {&fixed, &flex, &fixed_suffix}) {
    for (const std::string& tag : *group) {
      if (!first) out += ", ";
      out += tag;
      first = false;
    }
  }
  return out;
}

}  // namespace

void validate_caption_options(const CaptionOptions& o) {
  LS_CHECK(!o.caption_separator.empty(), "dataset: caption_separator is empty; use \",\" (the default)");
  LS_CHECK(o.keep_tokens >= 0, "dataset: keep_tokens must be >= 0, got ", o.keep_tokens);
  LS_CHECK(o.caption_dropout_every_n_epochs >= 0, "dataset: caption_dropout_every_n_epochs must be >= 0, got ",
           o.caption_dropout_every_n_epochs, "; use 0 to turn it off");
  LS_CHECK(o.caption_dropout_rate >= 0 && o.caption_dropout_rate <= 1,
           "dataset: caption_dropout_rate must be in [0, 1], got ", o.caption_dropout_rate);
  LS_CHECK(o.caption_tag_dropout_rate >= 0 && o.caption_tag_dropout_rate <= 1,
           "dataset: caption_tag_dropout_rate must be in [0, 1], got ", o.caption_tag_dropout_rate);
}

std::string with_prefix_suffix(const std::string& caption, const CaptionOptions& o) {
  std::string text = caption;
  if (!o.caption_prefix.empty()) text = o.caption_prefix + " " + text;
  if (!o.caption_suffix.empty()) text += " " + o.caption_suffix;
  return text;
}

std::string process_caption(const std::string& caption, const CaptionOptions& o, int epoch, core::Rng& rng) {
  validate_caption_options(o);
  std::string text = with_prefix_suffix(caption, o);

  // One draw only when the rate is set; the epoch rule adds no draw (Python's short-circuit).
  bool drop = o.caption_dropout_rate > 0 && rng.uniform() < o.caption_dropout_rate;
  drop = drop || (o.caption_dropout_every_n_epochs > 0 && epoch % o.caption_dropout_every_n_epochs == 0);
  if (drop) return "";

  text.resize(std::min(text.size(), text.find('\n')));  // kohya keeps the first line (no wildcards)
  // keep_tokens and the separators only take effect when tags move or drop: otherwise the
  // caption passes through unsplit (spacing and empty tags untouched).
  if (o.shuffle_caption || o.caption_tag_dropout_rate > 0) text = shuffle_and_drop_tags(text, o, rng);
  if (!o.secondary_separator.empty()) {
    text = replace_all(std::move(text), o.secondary_separator, o.caption_separator);
  }
  return text;
}

bool caption_is_static(const CaptionOptions& o) {
  // kohya's is_text_encoder_output_cacheable forgets caption_dropout_every_n_epochs; a cache
  // would then freeze whatever epoch it was made in, so it counts as dynamic here.
  return !o.shuffle_caption && o.caption_dropout_rate <= 0 && o.caption_tag_dropout_rate <= 0 &&
         o.caption_dropout_every_n_epochs <= 0;
}

CaptionFile read_caption_file(const std::string& path) {
  CaptionFile file;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return file;  // kohya: os.path.isfile
  file.exists = true;
  const std::string bytes = core::read_file(path);
  // kohya decodes the whole file (readlines) before taking line 1, so any bad byte fails.
  const std::string round_trip = text::u32_to_utf8(text::utf8_to_u32(bytes));
  if (round_trip != bytes) {
    size_t at = 0;
    while (at < bytes.size() && at < round_trip.size() && bytes[at] == round_trip[at]) ++at;
    LS_FAIL(path, ": caption file is not valid UTF-8 (bad byte at offset ", at, "); re-save it as UTF-8");
  }
  std::string_view content = bytes;
  // Python's "utf-8" codec keeps a BOM as U+FEFF, which is not whitespace, so kohya would train
  // on an invisible first character; Windows editors write BOMs, so we drop it.
  if (content.substr(0, 3) == "\xEF\xBB\xBF") content.remove_prefix(3);
  // Text mode reads \n, \r\n and a lone \r as line ends (universal newlines).
  const std::string_view first_line = content.substr(0, content.find_first_of("\r\n"));
  file.text = py_strip(first_line);
  file.empty = file.text.empty();
  return file;
}

}  // namespace ls::data
