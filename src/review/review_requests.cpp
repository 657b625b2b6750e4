// The review server's request checks; see review_requests.h.
#include "review/review_requests.h"

#include <system_error>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/path_within.h"

namespace ls::review {

int check_file_request(const std::filesystem::path& sheet_dir, const std::string& raw_relative) {
  return resolve_file_request(sheet_dir, "/files/" + raw_relative).status;
}

FileRequest resolve_file_request(const std::filesystem::path& sheet_dir, const std::string& raw_target) {
  const std::string prefix = "/files/";
  if (raw_target.rfind(prefix, 0) != 0) return {400, {}, "refused: percent-escapes in '" + raw_target + "'"};
  const std::string raw = raw_target.substr(prefix.size());
  const FileRequest not_plain{400, {}, "refused: '" + raw + "' is not a plain relative path"};
  const FileRequest not_image{403, {}, "refused: '" + raw + "' is not a sheet image inside the folder"};
  const FileRequest missing{404, {}, "no file '" + raw + "' in the sheet folder"};
  if (!is_safe_relative_path(raw)) return not_plain;
  const std::filesystem::path relative(raw);
  if (relative.extension() != ".png") return not_image;  // never sheet.json, selections.json or anything else
  std::error_code ec;
  const auto root = std::filesystem::canonical(sheet_dir, ec);
  if (ec) return missing;
  auto target = std::filesystem::weakly_canonical(root / relative, ec);
  if (ec) return missing;
  if (!core::path_within(root, target) || target == root) return not_image;  // a symlink leading out
  if (!std::filesystem::is_regular_file(target, ec)) return missing;
  // Served from the resolved path: a link swapped after this check cannot lead the read out.
  return {0, std::move(target), ""};
}

std::string parse_selection_update(const nlohmann::json& body, SelectionUpdate& out) {
  out = SelectionUpdate{};
  if (!body.is_object()) return "the body must be a JSON object";
  for (const auto& [key, value] : body.items()) {
    if (key != "state" && key != "note") return "unknown key '" + key + "' (state, note)";
    if (!value.is_string()) return key + " must be a string";
  }
  if (body.contains("state")) {
    try {
      out.state = parse_state(body["state"].get<std::string>(), "the body");
    } catch (const Error& e) {
      return e.what();
    }
  }
  if (body.contains("note")) out.note = body["note"].get<std::string>();
  return "";
}

Selection apply_selection_update(const Selection& current, const SelectionUpdate& update) {
  return {update.state.value_or(current.state), update.note.value_or(current.note)};
}

}  // namespace ls::review
