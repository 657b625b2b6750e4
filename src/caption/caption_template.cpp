#include "caption/caption_template.h"

#include "core/error.h"
#include "core/strings.h"

namespace ls::caption {

namespace {

// Literal text made only of punctuation and blanks: what joins a field to the next one.
bool ct_joiner(const std::string& s) {
  for (char c : s)
    if (!(c == ' ' || c == '\t' || c == ',' || c == '.' || c == ';' || c == ':' || c == '-' || c == '|')) return false;
  return true;
}

}  // namespace

bool CaptionTemplate::uses(const std::string& field) const {
  for (const auto& p : parts)
    if (p.field == field) return true;
  return false;
}

CaptionTemplate parse_caption_template(const std::string& text, const std::string& flag) {
  CaptionTemplate t;
  std::string literal;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      literal += c;
      ++i;
      continue;
    }
    if (c == '}') LS_FAIL(flag, ": '}' without '{' in '", text, "' (write }} for a literal brace)");
    if (c != '{') {
      literal += c;
      continue;
    }
    const size_t end = text.find('}', i);
    LS_CHECK(end != std::string::npos, flag, ": '{' without '}' in '", text, "'");
    const std::string field = text.substr(i + 1, end - i - 1);
    LS_CHECK(field == "prefix" || field == "tags" || field == "caption", flag, ": unknown field {", field, "} in '",
             text, "'; the fields are {prefix}, {tags} and {caption}");
    t.parts.push_back({literal, field});
    literal.clear();
    i = end;
  }
  LS_CHECK(!t.parts.empty(), flag, ": '", text, "' has no field; use {prefix}, {tags} and {caption}");
  t.parts.push_back({literal, ""});
  return t;
}

std::string render_caption_template(const CaptionTemplate& t, const std::string& prefix,
                                    const std::vector<std::string>& tags, const std::string& caption,
                                    const std::string& separator) {
  std::string out;
  bool drop_joiner = false;  // the previous field was empty
  for (const auto& part : t.parts) {
    if (!(drop_joiner && ct_joiner(part.literal))) out += part.literal;
    std::string value;
    if (part.field == "prefix") {
      value = prefix.empty() ? "" : prefix + separator;
    } else if (part.field == "tags") {
      for (const auto& tag : tags) value += (value.empty() ? "" : separator) + tag;
    } else if (part.field == "caption") {
      value = caption;
    }
    out += value;
    // {prefix} carries its own separator; an empty prefix has nothing to join.
    drop_joiner = part.field != "" && value.empty();
  }
  return core::trim(out);
}

}  // namespace ls::caption
