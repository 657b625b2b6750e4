// The text of a caption made from several captioners' outputs, `--combine "{prefix}{tags}. {caption}"`:
// fields {prefix} (the trigger word and the separator after it, when there is one), {tags} (the
// tagger's tags joined by the separator) and {caption} (Florence-2's sentence), literal text
// between them. A field that comes out empty takes the punctuation that follows it along, so a
// picture with no tags gets "ohwx, A woman ..." and not "ohwx, . A woman ...".
#pragma once

#include <string>
#include <vector>

namespace ls::caption {

struct CaptionTemplate {
  struct Part {
    std::string literal;  // text before the field
    std::string field;    // "prefix", "tags", "caption" or "" (the text after the last field)
  };
  std::vector<Part> parts;
  bool uses(const std::string& field) const;
};

/// Parses the template; an unknown field, a brace without its partner, or no field at all is an
/// error naming `flag`. "{{" and "}}" are literal braces.
CaptionTemplate parse_caption_template(const std::string& text, const std::string& flag);

/// The filled-in template, blanks at both ends trimmed (no final newline).
std::string render_caption_template(const CaptionTemplate& t, const std::string& prefix,
                                    const std::vector<std::string>& tags, const std::string& caption,
                                    const std::string& separator);

}  // namespace ls::caption
