// What the caption editor's server makes of a request before it touches a dataset folder: the
// image a /files/ or /thumbs/ target names, an image id, and the JSON bodies of the writes
// (a caption save, a bulk change, an undo). Pure functions, so the fuzz target
// (fuzz/fuzz_captions_requests.cpp) calls them as CaptionServer does; each refusal is the 400
// answer's message.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "caption/caption_bulk.h"

namespace ls::caption {

/// The part of a /files/ or /thumbs/ target after the prefix, as it came over the wire,
/// percent-decoded strictly: none when an escape is malformed, the text holds a NUL or a
/// backslash, or a segment is empty, "." or ".." (before or after decoding) or decodes to
/// something holding '/'. The result is '/'-separated and relative.
std::optional<std::string> decode_request_path(const std::string& raw);

/// "ROOT:PATH" (ROOT: the folder's index, 1 to 6 digits) -> (root, path); none otherwise. Whether
/// the folder lists that image is the store's to say.
std::optional<std::pair<size_t, std::string>> parse_image_id(const std::string& id);

/// PUT /api/caption: {"id", "text", "hash"}, all strings (hash: of the text it replaces).
struct CaptionEdit {
  std::string id, text, hash;
};
std::string parse_caption_edit(const nlohmann::json& body, CaptionEdit& out);

/// POST /api/bulk: {"op", "ids": [...] | "all", "preview"?, and the op's keys}.
struct BulkRequest {
  BulkOp op;
  bool preview = false;
  std::optional<std::vector<std::string>> ids;  // none: every image
};
std::string parse_bulk_request(const nlohmann::json& body, BulkRequest& out);

/// POST /api/undo: {"runs": [{"root": N, "run": "RUN_ID"}, ...]}.
std::string parse_undo_request(const nlohmann::json& body, std::vector<std::pair<size_t, std::string>>& out);

}  // namespace ls::caption
