// The request fields; see request.h. Defaults come from ImageSettings' member initialisers, names
// from A1111 (infotext labels) and kohya (prompt-file options).
#include "sample/request.h"

#include "core/strings.h"

namespace ls::sample {
namespace {

using S = ImageSettings;

template <typename F>
RequestField field(const char* name, F S::*member, const char* help, const char* infotext, bool required,
                   std::vector<std::string> aliases = {}, std::vector<std::string> kohya = {}) {
  RequestField f{core::field_key(name, member, help), member, infotext, required, std::move(kohya), ""};
  f.key.aliases = std::move(aliases);
  return f;
}

RequestField resetting(RequestField f, const char* other) {
  f.resets = other;
  return f;
}

}  // namespace

const std::vector<RequestField>& request_fields() {
  static const std::vector<RequestField> fields = {
      field("prompt", &S::prompt, "Prompt; A1111 emphasis (word:1.2) (word) [word], BREAK", "", false, {}, {"prompt"}),
      field("negative_prompt", &S::negative_prompt, "Negative prompt", "", false, {"negative"}, {"n"}),
      field("steps", &S::steps, "Sampling steps", "Steps", true, {}, {"s", "sample_steps"}),
      resetting(field("sampler", &S::sampler, "Sampler (A1111 name): Euler, Euler a, Heun, DPM++ 2M, DDIM, ...",
                      "Sampler", true),
                "schedule_type"),
      field("schedule_type", &S::schedule_type, "A1111 schedule type: Automatic, Karras, Exponential, ...",
            "Schedule type", false, {"schedule"}),
      field("cfg_scale", &S::cfg_scale, "Classifier-free guidance scale", "CFG scale", true, {"cfg"}, {"l", "scale"}),
      field("seed", &S::seed, "Seed (-1 in `sample`: a random one)", "Seed", true, {}, {"d"}),
      field("width", &S::width, "Width, a multiple of 64", "Size", true, {}, {"w"}),
      field("height", &S::height, "Height, a multiple of 64", "Size", true, {}, {"h"}),
  };
  return fields;
}

const core::KeyTable<ImageSettings>& request_keys() {
  static const core::KeyTable<ImageSettings> table = [] {
    std::vector<core::Key<ImageSettings>> keys;
    for (const RequestField& f : request_fields()) keys.push_back(f.key);
    return core::KeyTable<ImageSettings>(std::move(keys));
  }();
  return table;
}

const RequestField* find_request_field(const std::string& name) {
  for (const RequestField& f : request_fields())
    if (f.key.answers_to(name)) return &f;
  return nullptr;
}

std::string field_text(const RequestField& field, const ImageSettings& settings) {
  struct Text {
    const ImageSettings& s;
    std::string operator()(std::string S::*m) const { return s.*m; }
    std::string operator()(int64_t S::*m) const { return std::to_string(s.*m); }
    std::string operator()(double S::*m) const { return core::format_double(s.*m); }
  };
  return std::visit(Text{settings}, field.member);
}

void copy_field(const RequestField& field, const ImageSettings& from, ImageSettings& to) {
  std::visit([&](auto m) { to.*m = from.*m; }, field.member);
}

}  // namespace ls::sample
