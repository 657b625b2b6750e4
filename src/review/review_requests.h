// What the review server makes of a request before it touches the sheet folder: the file a
// /files/ target names (checked on the raw target, before any percent-decoding, and after
// resolving links), and the change a selections write asks for. Pure functions of their inputs
// (and the folder's links), so the fuzz target (fuzz/fuzz_review_requests.cpp) calls them as the
// server does.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "review/review_store.h"

namespace ls::review {

/// Checks the part of a /files/ request target after "/files/" as it came over the wire (before
/// percent-decoding): returns 0 when it may be served, else the HTTP status to refuse it with.
/// 400: percent-escapes, backslashes, absolute paths, '.'/'..' or empty segments, odd characters;
/// 403: not a .png, sheet.json/selections.json, or (after resolving symlinks) outside sheet_dir;
/// 404: no such file.
int check_file_request(const std::filesystem::path& sheet_dir, const std::string& raw_relative);

/// A /files/ request: the status (0 = serve `file`) and, when refused, what to say.
struct FileRequest {
  int status = 0;
  std::filesystem::path file;  // canonical, inside the canonical sheet folder
  std::string message;
};
/// `raw_target`: the request target's path as sent (review/local_server.h raw_target_path).
FileRequest resolve_file_request(const std::filesystem::path& sheet_dir, const std::string& raw_target);

/// The body of PUT/POST /api/selections/<id>: {"state": "picked|rejected|none", "note": "..."},
/// either key may be left out to keep the cell's value.
struct SelectionUpdate {
  std::optional<CellState> state;
  std::optional<std::string> note;
};
/// "" and `out` set when `body` is such an object; else the 400 answer's message.
std::string parse_selection_update(const nlohmann::json& body, SelectionUpdate& out);
/// The cell's choice after `update`.
Selection apply_selection_update(const Selection& current, const SelectionUpdate& update);

}  // namespace ls::review
