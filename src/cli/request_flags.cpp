// Request fields as flags; see request_flags.h.
#include "cli/request_flags.h"

namespace ls::cli {

void add_request_flags(CLI::App& cmd, const sample::ImageSettings& defaults, std::map<std::string, std::string>& values) {
  const std::map<std::string, std::string> short_names = {{"prompt", "-p"}, {"negative_prompt", "-n"}};
  for (const sample::RequestField& f : sample::request_fields()) {
    std::string names;
    if (const auto it = short_names.find(f.key.name); it != short_names.end()) names = it->second + ",";
    names += "--" + f.key.name;
    for (const std::string& alias : f.key.aliases) names += ",--" + alias;
    CLI::Option* option = cmd.add_option(names, values[f.key.name], f.key.help);
    struct TypeName {
      const char* operator()(std::string sample::ImageSettings::*) const { return "TEXT"; }
      const char* operator()(int64_t sample::ImageSettings::*) const { return "INT"; }
      const char* operator()(double sample::ImageSettings::*) const { return "FLOAT"; }
    };
    option->type_name(std::visit(TypeName{}, f.member));
    const std::string shown = sample::field_text(f, defaults);
    if (!shown.empty()) option->default_str(shown);
  }
}

}  // namespace ls::cli
