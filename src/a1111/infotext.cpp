// A1111 infotext: the params-line lexer mirrors infotext_utils.re_param
//   \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)   (scanned as re.findall does)
// and the tag finder extra_networks.re_extra_net  <(\w+):([^>]+)>  ; \s and \w follow Python's
// Unicode str.isspace / "not space" so that A1111 and lorastudio split lines the same way.
#include "a1111/infotext.h"

#include <charconv>
#include <cstdio>
#include <cmath>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "text/unicode.h"

namespace ls::a1111 {
namespace infotext_detail {

const char* const kFixAdvice = "fix the text or take it from an image lorastudio or A1111 wrote";

/// Python str.isspace() of a decoded character (-1: not a well-formed one).
bool is_space(int32_t cp) { return cp >= 0 && text::py_isspace(static_cast<char32_t>(cp)); }
using text::py_strip;

/// Python's \w, with every non-space non-ASCII character counted as a letter.
bool is_word(int32_t cp) {
  return (cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || cp == '_' ||
         (cp >= 0x80 && !is_space(cp));
}

size_t skip_spaces(std::string_view s, size_t i) {
  size_t len = 1;
  while (i < s.size() && is_space(text::utf8_code_point_at(s, i, len))) i += len;
  return i;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> parts;
  size_t from = 0;
  for (size_t at; (at = s.find(sep, from)) != std::string_view::npos; from = at + 1)
    parts.emplace_back(s.substr(from, at - from));
  parts.emplace_back(s.substr(from));
  return parts;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

struct RawParam {
  std::string key, value;
};

/// One re_param match at `pos`; returns the end of the match or npos.
size_t match_param(std::string_view s, size_t pos, RawParam& out) {
  size_t i = skip_spaces(s, pos), len = 1;
  if (i >= s.size() || !is_word(text::utf8_code_point_at(s, i, len))) return std::string_view::npos;
  const size_t key_begin = i;
  size_t key_chars = 0;
  while (i < s.size()) {
    int32_t cp = text::utf8_code_point_at(s, i, len);
    if (!(is_word(cp) || cp == ' ' || cp == '-' || cp == '/')) break;
    i += len;
    ++key_chars;
  }
  if (key_chars < 2 || i >= s.size() || s[i] != ':') return std::string_view::npos;
  out.key = std::string(s.substr(key_begin, i - key_begin));
  const size_t v = skip_spaces(s, i + 1);
  if (v < s.size() && s[v] == '"') {  // "(?:\\.|[^\\"])+" then , or end
    size_t p = v + 1, inner = 0;
    while (p < s.size() && s[p] != '"') {
      if (s[p] == '\\') {
        if (p + 1 >= s.size()) break;
        p += 1;
      }
      p += 1;
      ++inner;
    }
    if (p < s.size() && s[p] == '"' && inner > 0 && (p + 1 == s.size() || s[p + 1] == ',')) {
      out.value = std::string(s.substr(v, p + 1 - v));
      return p + 1 == s.size() ? p + 1 : p + 2;
    }
  }
  const size_t comma = std::min(s.find(',', v), s.size());
  out.value = std::string(s.substr(v, comma - v));
  return comma == s.size() ? comma : comma + 1;
}

/// re_param.findall(line).
std::vector<RawParam> find_params(std::string_view line) {
  std::vector<RawParam> found;
  size_t pos = 0;
  while (pos < line.size()) {
    RawParam p;
    size_t end = match_param(line, pos, p);
    if (end != std::string_view::npos) {
      found.push_back(std::move(p));
      pos = end;
    } else {
      size_t len = 1;
      text::utf8_code_point_at(line, pos, len);
      pos += len;
    }
  }
  return found;
}

/// infotext_utils.unquote: json.loads of a "..." value, the value itself when that fails.
std::string unquote(const std::string& v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return v;
  try {
    nlohmann::json j = nlohmann::json::parse(v);
    if (j.is_string()) return j.get<std::string>();
  } catch (const nlohmann::json::exception&) {
  }
  return v;
}

std::string number_text(std::string_view s) {
  std::string t = py_strip(s);
  if (!t.empty() && t[0] == '+') t.erase(0, 1);
  return t;
}

int64_t parse_int(std::string_view s, const std::string& what) {
  const std::string t = number_text(s);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  LS_CHECK(!t.empty() && ec == std::errc() && end == t.data() + t.size(), what, ": expected an integer, got '",
           std::string(s), "'; ", kFixAdvice);
  return v;
}

double parse_real(std::string_view s, const std::string& what) {
  const std::string t = number_text(s);
  double v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  LS_CHECK(!t.empty() && ec == std::errc() && end == t.data() + t.size() && std::isfinite(v), what,
           ": expected a finite number, got '", std::string(s), "'; ", kFixAdvice);
  return v;
}

struct Tag {
  size_t begin = 0, end = 0;
  std::string type, args;
};

/// re_extra_net matches, left to right, not overlapping (as re.sub visits them).
std::vector<Tag> find_tags(std::string_view s) {
  std::vector<Tag> tags;
  size_t pos = 0;
  while ((pos = s.find('<', pos)) != std::string_view::npos) {
    size_t i = pos + 1, len = 1;
    while (i < s.size() && is_word(text::utf8_code_point_at(s, i, len))) i += len;
    const size_t close = i + 1 < s.size() ? s.find('>', i + 1) : std::string_view::npos;
    if (i == pos + 1 || i >= s.size() || s[i] != ':' || close == std::string_view::npos || close == i + 1) {
      ++pos;
      continue;
    }
    tags.push_back({pos, close + 1, std::string(s.substr(pos + 1, i - pos - 1)),
                    std::string(s.substr(i + 1, close - i - 1))});
    pos = close + 1;
  }
  return tags;
}

bool is_lora_tag(const Tag& t) { return t.type == "lora" || t.type == "lyco"; }

/// extra_networks_lora.activate: positional name, te, unet; named te=, unet=.
InfotextLora lora_from_tag(const Tag& tag, const std::string& where) {
  const std::string what = str_cat(where, ": LoRA tag <", tag.type, ":", tag.args, ">");
  std::vector<std::string> positional;
  std::map<std::string, std::string> named;
  for (const std::string& item : split(tag.args, ':')) {
    auto parts = split(item, '=');
    if (parts.size() == 2) named[parts[0]] = parts[1];
    else positional.push_back(item);
  }
  LS_CHECK(!positional.empty() && !positional[0].empty(), what, ": no LoRA name; write <lora:name:strength>");
  LS_CHECK(positional.size() <= 3 && !named.count("dyn"), what,
           ": dynamic dim (dyn) is not supported by lorastudio; remove it");
  for (const auto& [k, v] : named)
    LS_CHECK(k == "te" || k == "unet", what, ": unknown argument '", k, "='; lorastudio knows te= and unet=");
  InfotextLora lora;
  lora.name = positional[0];
  if (positional.size() > 1) lora.strength = parse_real(positional[1], what + " strength");
  if (named.count("te")) lora.strength = parse_real(named["te"], what + " te");
  if (positional.size() > 2) lora.unet_strength = parse_real(positional[2], what + " unet strength");
  if (named.count("unet")) lora.unet_strength = parse_real(named["unet"], what + " unet");
  return lora;
}

std::string lora_tag(const InfotextLora& lora) {
  std::string tag = "<lora:" + lora.name + ":" + format_number(lora.strength);
  if (lora.unet_strength) tag += ":" + format_number(*lora.unet_strength);
  return tag + ">";
}

/// "Lora hashes" names: A1111 drops ':' and ',' from the alias.
std::string hash_alias(const std::string& name) {
  std::string a;
  for (char c : name)
    if (c != ':' && c != ',') a += c;
  return py_strip(a);
}

std::string escape_path_field(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '%' ? "%25" : c == ',' ? "%2C" : std::string(1, c);
  return out;
}

std::string unescape_path_field(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 3, "%25") == 0) out += '%', i += 2;
    else if (s.compare(i, 3, "%2C") == 0) out += ',', i += 2;
    else out += s[i];
  }
  return out;
}

/// Scheduler labels, names and aliases of modules/sd_schedulers.py, for pre-1.9 sampler names
/// like "DPM++ 2M Karras"; longest first so "SGM Uniform" wins over "Uniform".
const std::vector<std::pair<std::string, std::string>>& scheduler_suffixes() {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"Align Your Steps", "Align Your Steps"}, {"align_your_steps", "Align Your Steps"},
      {"Polyexponential", "Polyexponential"},   {"polyexponential", "Polyexponential"},
      {"Exponential", "Exponential"},           {"exponential", "Exponential"},
      {"SGM Uniform", "SGM Uniform"},           {"sgm_uniform", "SGM Uniform"},
      {"SGMUniform", "SGM Uniform"},            {"KL Optimal", "KL Optimal"},
      {"kl_optimal", "KL Optimal"},             {"Automatic", "Automatic"},
      {"automatic", "Automatic"},               {"Uniform", "Uniform"},
      {"uniform", "Uniform"},                   {"Karras", "Karras"},
      {"karras", "Karras"},                     {"Simple", "Simple"},
      {"simple", "Simple"},                     {"Normal", "Normal"},
      {"normal", "Normal"},                     {"DDIM", "DDIM"},
      {"ddim", "DDIM"},                         {"Beta", "Beta"},
      {"beta", "Beta"}};
  return table;
}

/// The request fields on the parameters line, grouped by label ("Size": width, height), in order.
using FieldGroup = std::pair<std::string, std::vector<const sample::RequestField*>>;
const std::vector<FieldGroup>& request_groups() {
  static const std::vector<FieldGroup> groups = [] {
    std::vector<FieldGroup> out;
    for (const sample::RequestField& f : sample::request_fields()) {
      if (f.infotext.empty()) continue;
      if (out.empty() || out.back().first != f.infotext) out.push_back({f.infotext, {}});
      out.back().second.push_back(&f);
    }
    return out;
  }();
  return groups;
}

bool is_required(const std::string& label) {
  for (const auto& [l, fields] : request_groups())
    if (l == label) return fields.front()->infotext_required;
  return false;
}

/// The labels GenerationParams holds as fields: the request's and the files'.
const std::set<std::string>& field_keys() {
  static const std::set<std::string> keys = [] {
    std::set<std::string> out = {"Model hash", "Model", "Model path", "Version", "Lora hashes", "Lora paths"};
    for (const auto& group : request_groups()) out.insert(group.first);
    return out;
  }();
  return keys;
}

/// A request field's value on the parameters line (numbers checked finite: they must read back).
std::string param_text(const sample::RequestField& f, const GenerationParams& p) {
  if (const auto* m = std::get_if<double sample::ImageSettings::*>(&f.member)) return format_number(p.**m);
  return sample::field_text(f, p);
}

/// Reads a request field from its part of the parameters line; `what` names it in errors.
void read_param(const sample::RequestField& f, const std::string& text, const std::string& what, GenerationParams& p) {
  struct Read {
    const std::string& text;
    const std::string& what;
    GenerationParams& p;
    void operator()(std::string sample::ImageSettings::*m) const { p.*m = text; }
    void operator()(int64_t sample::ImageSettings::*m) const { p.*m = parse_int(text, what); }
    void operator()(double sample::ImageSettings::*m) const { p.*m = parse_real(text, what); }
  };
  std::visit(Read{text, what, p}, f.member);
}

}  // namespace infotext_detail

bool operator==(const InfotextLora& a, const InfotextLora& b) {
  return std::tie(a.name, a.path, a.hash, a.strength, a.unet_strength) ==
         std::tie(b.name, b.path, b.hash, b.strength, b.unet_strength);
}

bool operator==(const GenerationParams& a, const GenerationParams& b) {
  return std::tie(a.prompt, a.negative_prompt, a.steps, a.sampler, a.schedule_type, a.cfg_scale, a.seed, a.width,
                  a.height, a.model, a.model_hash, a.model_path, a.loras, a.version, a.extra) ==
         std::tie(b.prompt, b.negative_prompt, b.steps, b.sampler, b.schedule_type, b.cfg_scale, b.seed, b.width,
                  b.height, b.model, b.model_hash, b.model_path, b.loras, b.version, b.extra);
}

std::string format_number(double value) {
  LS_CHECK(std::isfinite(value), "infotext: cannot write the non-finite number ", value);
  return core::format_double(value);
}

std::string infotext_quote(const std::string& value) {
  using namespace infotext_detail;
  bool needs = value.empty() || py_strip(value) != value;
  for (char c : value) needs = needs || c == ',' || c == ':' || c == '"' || static_cast<uint8_t>(c) < 0x20;
  if (!needs) return value;
  return core::json_quote(value);  // A1111 quotes with json.dumps(value, ensure_ascii=False)
}

namespace infotext_detail {

void check_utf8(const std::string& s, const std::string& what) {
  LS_CHECK(core::is_valid_utf8(s), "infotext: ", what, " is not valid UTF-8");
}

void check_text_lines(const std::string& text, const std::string& what) {
  check_utf8(text, what);
  for (const std::string& line : split(text, '\n'))
    LS_CHECK(!starts_with(py_strip(line), "Negative prompt:"), "infotext: a line of the ", what,
             " starts with 'Negative prompt:', which would be read as the negative prompt; reword it");
}

void check_lora(const InfotextLora& lora) {
  LS_CHECK(!lora.name.empty(), "infotext: a LoRA has no name");
  check_utf8(lora.name, "LoRA name");
  for (char c : lora.name) {
    LS_CHECK(static_cast<uint8_t>(c) >= 0x20, "infotext: LoRA name ", infotext_quote(lora.name),
             " holds a control character; rename the LoRA");
    LS_CHECK(c != ':' && c != '<' && c != '>' && c != '=', "infotext: LoRA name '", lora.name, "' holds '", c,
             "', which A1111's <lora:name:strength> tag cannot carry; rename the LoRA");
  }
  check_utf8(lora.path, "LoRA path");
  check_utf8(lora.hash, "LoRA hash");
  format_number(lora.strength);
  if (lora.unet_strength) format_number(*lora.unet_strength);
}

bool is_param_key(const std::string& key) {
  RawParam p;
  const std::string probe = key + ": x";
  return match_param(probe, 0, p) == probe.size() && p.key == key && key.back() != ' ';
}

/// The prompt with a tag for each LoRA it does not already carry.
std::string prompt_with_tags(const GenerationParams& params) {
  std::map<std::string, InfotextLora> tagged;
  // Where each tag should be read back: the prompt's own, then each one written here.
  std::vector<std::pair<size_t, size_t>> spans;
  for (const Tag& tag : find_tags(params.prompt)) {
    spans.emplace_back(tag.begin, tag.end);
    if (!is_lora_tag(tag)) continue;
    InfotextLora l = lora_from_tag(tag, "infotext: prompt");
    tagged[l.name] = l;
  }
  std::string prompt = params.prompt;
  for (const InfotextLora& lora : params.loras) {
    auto it = tagged.find(lora.name);
    if (it == tagged.end()) {
      if (!prompt.empty()) prompt += ' ';
      const std::string tag = lora_tag(lora);
      spans.emplace_back(prompt.size(), prompt.size() + tag.size());
      prompt += tag;
      continue;
    }
    LS_CHECK(it->second.strength == lora.strength && it->second.unet_strength == lora.unet_strength,
             "infotext: the prompt tags LoRA '", lora.name, "' with other strengths than the LoRA list (",
             lora_tag(it->second), " vs ", lora_tag(lora), "); keep one of them");
  }
  // An unclosed "<name:" in the prompt would take the '>' of a tag written after it (fuzz crash-c482fb48).
  std::vector<std::pair<size_t, size_t>> read_back;
  for (const Tag& tag : find_tags(prompt)) read_back.emplace_back(tag.begin, tag.end);
  LS_CHECK(read_back == spans, "infotext: the prompt holds an unclosed '<name:' that would swallow the LoRA tag ",
           "written after it; close it with '>' or remove the '<'");
  return prompt;
}

std::string joined_lora_field(const std::vector<InfotextLora>& loras, bool paths) {
  std::string out;
  std::set<std::string> seen;
  for (const InfotextLora& l : loras) {
    const std::string& value = paths ? l.path : l.hash;
    if (value.empty()) continue;
    const std::string name = paths ? escape_path_field(l.name) : hash_alias(l.name);
    LS_CHECK(seen.insert(name).second, "infotext: LoRAs '", l.name,
             "' and another one have the same name in 'Lora hashes' (A1111 drops commas); rename one");
    if (!out.empty()) out += ", ";
    out += name + ": " + (paths ? escape_path_field(value) : value);
  }
  return out;
}

}  // namespace infotext_detail

std::string format_infotext(const GenerationParams& params) {
  using namespace infotext_detail;
  check_text_lines(params.prompt, "prompt");
  check_text_lines(params.negative_prompt, "negative prompt");
  std::set<std::string> names;
  for (const InfotextLora& lora : params.loras) {
    check_lora(lora);
    LS_CHECK(names.insert(lora.name).second, "infotext: LoRA '", lora.name, "' is listed twice; list it once");
  }
  const std::string lora_hashes = joined_lora_field(params.loras, false);
  const std::string lora_paths = joined_lora_field(params.loras, true);
  std::vector<std::pair<std::string, std::string>> kv;
  for (const auto& [label, fields] : request_groups()) {
    std::string value;
    for (const sample::RequestField* f : fields) value += (value.empty() ? "" : "x") + param_text(*f, params);
    kv.emplace_back(label, value);
  }
  kv.insert(kv.end(), {{"Model hash", params.model_hash}, {"Model", params.model}});
  for (const auto& [key, value] : params.extra) {
    LS_CHECK(is_param_key(key), "infotext: extra key '", key,
             "' is not an A1111 key (a letter or digit, then letters, digits, spaces, - or /)");
    const bool lora_key_free = (key == "Lora hashes" && lora_hashes.empty()) || (key == "Lora paths" && lora_paths.empty());
    LS_CHECK(!field_keys().count(key) || lora_key_free, "infotext: extra key '", key,
             "' is a GenerationParams field; set the field instead");
    kv.emplace_back(key, value);
  }
  kv.insert(kv.end(), {{"Lora hashes", lora_hashes}, {"Model path", params.model_path},
                       {"Lora paths", lora_paths}, {"Version", params.version}});
  std::string line;
  for (const auto& [key, value] : kv) {
    const bool always = field_keys().count(key) == 0 || is_required(key);
    if (value.empty() && !always) continue;
    check_utf8(value, key);
    line += (line.empty() ? "" : ", ") + key + ": " + infotext_quote(value);
  }
  std::string text = prompt_with_tags(params);
  if (!params.negative_prompt.empty()) text += "\nNegative prompt: " + params.negative_prompt;
  return py_strip(text + "\n" + line);
}

namespace infotext_detail {

/// Fills loras from the tags of the prompt, which is left without them.
void take_lora_tags(GenerationParams& p, const std::string& name) {
  std::string prompt;
  size_t from = 0;
  for (const Tag& tag : find_tags(p.prompt)) {
    if (!is_lora_tag(tag)) continue;
    InfotextLora lora = lora_from_tag(tag, name);
    for (const InfotextLora& other : p.loras)
      LS_CHECK(other.name != lora.name, name, ": LoRA '", lora.name, "' is tagged twice in the prompt; keep one tag");
    p.loras.push_back(std::move(lora));
    prompt += p.prompt.substr(from, tag.begin - from);
    from = tag.end;
  }
  prompt += p.prompt.substr(from);
  // Each line stripped, as A1111's parser leaves every prompt line: a tag taken from the end of a
  // line must not leave the blank before it there ("portrait, "), or writing the tag back at the
  // end of the prompt and reading again would strip it (fuzz_infotext crash-f9f1d618).
  const std::vector<std::string> lines = split(prompt, '\n');
  std::string stripped;
  for (size_t i = 0; i < lines.size(); ++i) stripped += (i == 0 ? "" : "\n") + py_strip(lines[i]);
  p.prompt = py_strip(stripped);
}

/// "a: 0123456789ab, b: ..." onto the LoRAs by alias; false (nothing assigned) unless all match.
bool assign_lora_hashes(GenerationParams& p, const std::string& value) {
  std::map<std::string, std::string> by_alias;
  for (const std::string& entry : split(value, ',')) {
    auto colon = entry.find(':');
    if (colon == std::string::npos) return false;
    if (!by_alias.emplace(py_strip(entry.substr(0, colon)), py_strip(entry.substr(colon + 1))).second) return false;
  }
  std::vector<InfotextLora*> targets;
  for (const auto& [alias, hash] : by_alias) {
    InfotextLora* match = nullptr;
    for (InfotextLora& l : p.loras)
      if (hash_alias(l.name) == alias) match = &l;
    if (!match) return false;
    targets.push_back(match);
  }
  auto it = by_alias.begin();
  for (InfotextLora* l : targets) l->hash = (it++)->second;
  return true;
}

void assign_lora_paths(GenerationParams& p, const std::string& value, const std::string& name) {
  const std::vector<std::string> entries = split(value, ',');
  for (size_t i = 0; i < entries.size(); ++i) {
    std::string entry = entries[i];
    if (i > 0 && starts_with(entry, " ")) entry.erase(0, 1);
    const size_t sep = entry.find(": ");
    LS_CHECK(sep != std::string::npos, name, ": 'Lora paths' entry '", entry, "' is not 'name: path'; ", kFixAdvice);
    const std::string lora_name = unescape_path_field(entry.substr(0, sep));
    InfotextLora* match = nullptr;
    for (InfotextLora& l : p.loras)
      if (l.name == lora_name) match = &l;
    LS_CHECK(match != nullptr, name, ": 'Lora paths' names '", lora_name, "' but the prompt has no <lora:",
             lora_name, ":...> tag; ", kFixAdvice);
    match->path = unescape_path_field(entry.substr(sep + 2));
  }
}

void split_old_sampler_name(GenerationParams& p) {
  for (const auto& [suffix, label] : scheduler_suffixes()) {
    const std::string tail = " " + suffix;
    if (p.sampler.size() > tail.size() && p.sampler.compare(p.sampler.size() - tail.size(), tail.size(), tail) == 0) {
      p.sampler.erase(p.sampler.size() - tail.size());
      p.schedule_type = label;
      return;
    }
  }
}

}  // namespace infotext_detail

GenerationParams parse_infotext(const std::string& text, const std::string& name) {
  using namespace infotext_detail;
  LS_CHECK(core::is_valid_utf8(text), name, ": the parameters text is not valid UTF-8; ", kFixAdvice);
  std::vector<std::string> lines = split(py_strip(text), '\n');
  std::vector<RawParam> raw = find_params(lines.back());
  LS_CHECK(raw.size() >= 3, name, ": no parameters line (\"Steps: ..., Sampler: ..., CFG scale: ...\") at the end ",
           "of the text; is this an A1111/lorastudio image?");
  lines.pop_back();
  GenerationParams p;
  p.version.clear();
  bool in_negative = false;
  for (const std::string& raw_line : lines) {  // parse_generation_parameters' prompt loop
    std::string line = py_strip(raw_line);
    if (starts_with(line, "Negative prompt:")) {
      in_negative = true;
      line = py_strip(std::string_view(line).substr(16));
    }
    std::string& target = in_negative ? p.negative_prompt : p.prompt;
    target += (target.empty() ? "" : "\n") + line;
  }
  std::map<std::string, std::string> values;
  for (const RawParam& r : raw)
    if (!r.value.empty()) values[r.key] = unquote(r.value);  // A1111 skips empty values (v[0] fails)
  for (const auto& [label, fields] : request_groups()) {
    const auto it = values.find(label);
    LS_CHECK(it != values.end() || !fields.front()->infotext_required, name, ": the parameters line has no '", label,
             "'; ", kFixAdvice);
    if (it == values.end()) continue;
    if (fields.size() == 1) {
      read_param(*fields.front(), it->second, name + ": " + label, p);
      continue;
    }
    // A joined value ("832x1216"): whole numbers separated by 'x', one per field.
    const std::vector<std::string> parts = split(it->second, 'x');
    bool digits = parts.size() == fields.size();
    for (const std::string& part : parts) digits = digits && !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    std::string layout;
    for (const sample::RequestField* f : fields) layout += (layout.empty() ? "" : "x") + core::ascii_upper(f->key.name);
    LS_CHECK(digits, name, ": ", label, " must be ", layout, ", got '", it->second, "'; ", kFixAdvice);
    for (size_t i = 0; i < fields.size(); ++i) read_param(*fields[i], parts[i], str_cat(name, ": ", label, " ", fields[i]->key.name), p);
  }
  take_lora_tags(p, name);
  for (auto& [key, value] : values) {
    if (key == "Model hash") p.model_hash = value;
    else if (key == "Model") p.model = value;
    else if (key == "Model path") p.model_path = value;
    else if (key == "Version") p.version = value;
    else if (key == "Lora paths") assign_lora_paths(p, value, name);
    else if (key == "Lora hashes") {
      // Hashes of LoRAs the prompt does not tag stay as text; an empty list says nothing (and is
      // not written back: fuzz_infotext crash-9b81f854).
      if (!assign_lora_hashes(p, value) && !value.empty()) p.extra[key] = value;
    } else if (!field_keys().count(key)) {
      p.extra[key] = value;
    }
  }
  if (!values.count("Schedule type")) split_old_sampler_name(p);
  return p;
}

}  // namespace ls::a1111
