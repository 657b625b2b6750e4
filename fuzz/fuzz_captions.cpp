// libFuzzer target for training-time caption processing (data/captions.cpp, kohya's
// BaseDataset.process_caption): prefix/suffix, caption dropout, keep_tokens, the keep_tokens_separator
// fixed | flexible | fixed split, shuffle, tag dropout and the secondary separator. The first 4 bytes
// choose the options, the rest is up to 6 fields separated by 0x1F: caption, caption_separator,
// keep_tokens_separator, secondary_separator, caption_prefix, caption_suffix (missing or empty
// separators take kohya-like defaults). Beyond "no crash, only ls::Error":
//  - the same seed gives the same caption (the Rng stream is the only source of randomness);
//  - valid UTF-8 in gives valid UTF-8 out (splits and replacements happen at separator bytes);
//  - without shuffle or tag dropout the caption passes through unsplit (first line, prefix/suffix);
//  - with them the kept tokens stay in front, the fixed suffix at the end, and the output is the
//    tags re-joined by ", ": the same bytes in another order, or a subset of them with tag dropout.
// The expected split is recomputed here from kohya's rules, independently of the library's code.
// fuzz-what: caption processing (separators, keep tokens, shuffle, dropout)
// fuzz-sources: src/data/captions.cpp src/text/unicode.cpp src/core/atomic_file.cpp
// fuzz-libs: -licuuc
// fuzz-max-len: 2048
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "data/captions.h"
#include "text/unicode.h"

namespace {

bool fzc_valid_utf8(std::string_view s) {
  for (size_t i = 0, len = 0; i < s.size(); i += len)
    if (ls::text::utf8_code_point_at(s, i, len) < 0) return false;
  return true;
}

std::vector<std::string> fzc_split(std::string_view s, std::string_view sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t pos; (pos = s.find(sep, start)) != std::string_view::npos; start = pos + sep.size())
    out.emplace_back(s.substr(start, pos - start));
  out.emplace_back(s.substr(start));
  return out;
}

std::string fzc_join(const std::vector<std::string>& tags) {
  std::string out;
  for (size_t i = 0; i < tags.size(); ++i) out += (i ? ", " : "") + tags[i];
  return out;
}

std::array<size_t, 256> fzc_bytes(std::string_view s) {
  std::array<size_t, 256> n{};
  for (unsigned char c : s) ++n[c];
  return n;
}

// kohya's [t.strip() for t in part.split(sep) if t.strip()] (with keep_only_nonempty) or every
// stripped piece.
std::vector<std::string> fzc_tags(std::string_view part, std::string_view sep, bool nonempty_only) {
  std::vector<std::string> out;
  for (const std::string& piece : fzc_split(part, sep)) {
    std::string t = ls::text::py_strip(piece);
    if (!nonempty_only || !t.empty()) out.push_back(std::move(t));
  }
  return out;
}

// The three groups kohya's process_caption forms before shuffling (caption = the first line).
struct FzcGroups {
  std::vector<std::string> fixed, flex, suffix;
};
FzcGroups fzc_groups(const std::string& caption, const ls::data::CaptionOptions& o) {
  FzcGroups g;
  const std::string& ks = o.keep_tokens_separator;
  const size_t at = ks.empty() ? std::string::npos : caption.find(ks);
  if (at != std::string::npos) {
    const std::vector<std::string> parts = fzc_split(caption, ks);  // [fixed, flex, suffix, ...]
    g.fixed = fzc_tags(parts[0], o.caption_separator, true);
    g.flex = fzc_tags(parts[1], o.caption_separator, true);
    if (parts.size() > 2) {
      // Everything after the second separator is the suffix (a third one stays in its text).
      const size_t second = caption.find(ks, at + ks.size());
      g.suffix = fzc_tags(std::string_view(caption).substr(second + ks.size()), o.caption_separator, true);
    }
    return g;
  }
  g.flex = fzc_tags(ls::text::py_strip(caption), o.caption_separator, false);
  const size_t keep = std::min(g.flex.size(), static_cast<size_t>(o.keep_tokens));
  g.fixed.assign(g.flex.begin(), g.flex.begin() + static_cast<std::ptrdiff_t>(keep));
  g.flex.erase(g.flex.begin(), g.flex.begin() + static_cast<std::ptrdiff_t>(keep));
  return g;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint8_t flags = data[0], keep = data[1], rates = data[2], seed = data[3];
  std::vector<std::string> fields = fzc_split(std::string_view(reinterpret_cast<const char*>(data) + 4, size - 4), "\x1f");
  fields.resize(6);
  ls::data::CaptionOptions o;
  const std::string& caption = fields[0];
  o.shuffle_caption = flags & 1;
  o.caption_tag_dropout_rate = (flags & 2) ? (rates & 15) / 15.0 : 0;
  o.caption_dropout_rate = (flags & 4) ? (rates >> 4) / 15.0 : 0;
  o.caption_dropout_every_n_epochs = (flags & 8) ? keep >> 5 : 0;
  o.keep_tokens = keep & 31;
  o.caption_separator = fields[1].empty() ? "," : fields[1];
  if (flags & 16) o.keep_tokens_separator = fields[2].empty() ? "|||" : fields[2];
  if (flags & 32) o.secondary_separator = fields[3].empty() ? ";;;" : fields[3];
  if (flags & 64) o.caption_prefix = fields[4];
  if (flags & 128) o.caption_suffix = fields[5];
  const int epoch = 1 + (seed & 7);

  std::string out;
  try {
    ls::core::Rng rng(seed, {static_cast<uint64_t>(epoch)});
    out = ls::data::process_caption(caption, o, epoch, rng);
  } catch (const ls::Error&) {
    return 0;
  }
  // Not caught from here on: an ls::Error on options that passed once is a bug.
  ls::core::Rng again(seed, {static_cast<uint64_t>(epoch)});
  if (ls::data::process_caption(caption, o, epoch, again) != out) __builtin_trap();

  bool utf8_in = true;
  for (const std::string& f : {caption, o.caption_separator, o.keep_tokens_separator, o.secondary_separator,
                               o.caption_prefix, o.caption_suffix})
    utf8_in = utf8_in && fzc_valid_utf8(f);
  if (utf8_in && !fzc_valid_utf8(out)) __builtin_trap();

  if (!o.secondary_separator.empty()) return 0;  // its replacement may cross the groups' bounds
  const bool may_drop = o.caption_dropout_rate > 0 || o.caption_dropout_every_n_epochs > 0;
  if (may_drop && out.empty()) return 0;
  std::string text = ls::data::with_prefix_suffix(caption, o);
  text.resize(std::min(text.size(), text.find('\n')));
  if (!o.shuffle_caption && o.caption_tag_dropout_rate <= 0) {
    if (out != text) __builtin_trap();
    return 0;
  }
  const FzcGroups g = fzc_groups(text, o);
  const std::string fixed = fzc_join(g.fixed), suffix = fzc_join(g.suffix);
  if (out.compare(0, fixed.size(), fixed) != 0) __builtin_trap();
  if (out.size() < suffix.size() || out.compare(out.size() - suffix.size(), suffix.size(), suffix) != 0)
    __builtin_trap();
  std::vector<std::string> all = g.fixed;
  all.insert(all.end(), g.flex.begin(), g.flex.end());
  all.insert(all.end(), g.suffix.begin(), g.suffix.end());
  if (o.caption_tag_dropout_rate >= 1) {  // uniform() < 1: every flexible tag goes
    std::vector<std::string> kept = g.fixed;
    kept.insert(kept.end(), g.suffix.begin(), g.suffix.end());
    if (out != fzc_join(kept)) __builtin_trap();
  }
  const std::array<size_t, 256> have = fzc_bytes(out), full = fzc_bytes(fzc_join(all));
  if (o.caption_tag_dropout_rate <= 0) {
    if (have != full) __builtin_trap();
  } else {
    for (size_t c = 0; c < 256; ++c)
      if (have[c] > full[c]) __builtin_trap();
  }
  return 0;
}
