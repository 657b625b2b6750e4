// The caption server's request parsing; see caption_requests.h.
#include "caption/caption_requests.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"

namespace ls::caption {

namespace {

int request_hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool request_dot_segment(const std::string& s) { return s.empty() || s == "." || s == ".."; }

}  // namespace

std::optional<std::string> decode_request_path(const std::string& raw) {
  if (raw.empty() || raw.front() == '/') return std::nullopt;
  std::string out;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t slash = std::min(raw.find('/', start), raw.size());
    const std::string segment = raw.substr(start, slash - start);
    if (request_dot_segment(segment)) return std::nullopt;
    std::string decoded;
    for (size_t i = 0; i < segment.size(); ++i) {
      char c = segment[i];
      if (c == '%') {
        if (i + 2 >= segment.size()) return std::nullopt;
        int hi = request_hex_digit(segment[i + 1]), lo = request_hex_digit(segment[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        c = static_cast<char>(hi * 16 + lo);
        i += 2;
      }
      if (c == '\0' || c == '\\' || c == '/') return std::nullopt;
      decoded += c;
    }
    if (request_dot_segment(decoded)) return std::nullopt;
    out += (out.empty() ? "" : "/") + decoded;
    start = slash + 1;
  }
  return out;
}

std::optional<std::pair<size_t, std::string>> parse_image_id(const std::string& id) {
  const size_t colon = id.find(':');
  if (colon == std::string::npos || colon == 0 || colon > 6) return std::nullopt;
  size_t root = 0;
  for (size_t i = 0; i < colon; ++i) {
    if (id[i] < '0' || id[i] > '9') return std::nullopt;
    root = root * 10 + size_t(id[i] - '0');
  }
  return std::make_pair(root, id.substr(colon + 1));
}

std::string parse_caption_edit(const nlohmann::json& body, CaptionEdit& out) {
  if (!body.is_object()) return "the body must be a JSON object";
  for (const auto& [key, value] : body.items()) {
    if (key != "id" && key != "text" && key != "hash") return "unknown key '" + key + "' (id, text, hash)";
    if (!value.is_string()) return key + " must be a string";
  }
  for (const char* key : {"id", "text", "hash"})
    if (!body.contains(key)) return std::string("missing '") + key + "' (id, text, hash)";
  out = {body["id"].get<std::string>(), body["text"].get<std::string>(), body["hash"].get<std::string>()};
  return "";
}

std::string parse_bulk_request(const nlohmann::json& body, BulkRequest& out) {
  if (!body.is_object()) return "the body must be a JSON object";
  static const std::set<std::string> kStrings = {"op", "find", "replace", "tag", "from", "to"};
  static const std::set<std::string> kNumbers = {"general_threshold", "character_threshold"};
  out = BulkRequest{};
  BulkOp& op = out.op;
  for (const auto& [key, value] : body.items()) {
    if (kStrings.count(key)) {
      if (!value.is_string()) return key + " must be a string";
    } else if (kNumbers.count(key)) {
      if (!value.is_number()) return key + " must be a number";
    } else if (key == "preview") {
      if (!value.is_boolean()) return "preview must be true or false";
      out.preview = value.get<bool>();
    } else if (key == "tags") {
      if (!value.is_array()) return "tags must be a list of strings";
      for (const auto& t : value) {
        if (!t.is_string()) return "tags must be a list of strings";
        op.tags.push_back(t.get<std::string>());
      }
    } else if (key == "ids") {
      if (value.is_string() && value.get<std::string>() == "all") continue;
      if (!value.is_array()) return "ids must be \"all\" or a list of image ids";
      out.ids.emplace();
      for (const auto& id : value) {
        if (!id.is_string()) return "ids must be \"all\" or a list of image ids";
        out.ids->push_back(id.get<std::string>());
      }
    } else {
      return "unknown key '" + key + "' (docs/captions.md lists the bulk keys)";
    }
  }
  if (!body.contains("op")) return "missing 'op'";
  if (!body.contains("ids")) return "missing 'ids' (a list of image ids, or \"all\")";
  try {
    op.kind = parse_bulk_kind(body["op"].get<std::string>());
  } catch (const Error& e) {
    return e.what();
  }
  const auto text_of = [&](const char* key) { return body.contains(key) ? body[key].get<std::string>() : std::string(); };
  op.find = text_of("find");
  op.replace = text_of("replace");
  if (op.kind == BulkKind::kRenameTag) {
    op.find = text_of("from");
    op.replace = text_of("to");
    if (core::trim(op.find).empty() || core::trim(op.replace).empty())
      return "rename_tag needs 'from' and 'to'";
  }
  op.prefix = text_of("tag");
  if ((op.kind == BulkKind::kAddPrefix || op.kind == BulkKind::kAddTag) && core::trim(op.prefix).empty())
    return "add_prefix / add_tag need a non-empty 'tag'";
  if ((op.kind == BulkKind::kFindReplace || op.kind == BulkKind::kRegexReplace) && op.find.empty())
    return "find_replace / regex_replace need a non-empty 'find'";
  if (body.contains("general_threshold")) op.general_threshold = body["general_threshold"].get<double>();
  if (body.contains("character_threshold")) op.character_threshold = body["character_threshold"].get<double>();

  return "";
}

std::string parse_undo_request(const nlohmann::json& body, std::vector<std::pair<size_t, std::string>>& out) {
  out.clear();
  if (!body.is_object() || !body.contains("runs") || !body["runs"].is_array() || body.size() != 1)
    return "send {\"runs\": [{\"root\": 0, \"run\": \"...\"}]}";
  for (const auto& item : body["runs"]) {
    if (!item.is_object() || !item.contains("root") || !item["root"].is_number_unsigned() || !item.contains("run") ||
        !item["run"].is_string() || item["run"].get<std::string>().empty()) {
      out.clear();
      return "each run is {\"root\": N, \"run\": \"RUN_ID\"}";
    }
    out.emplace_back(item["root"].get<size_t>(), item["run"].get<std::string>());
  }
  return "";
}

}  // namespace ls::caption
