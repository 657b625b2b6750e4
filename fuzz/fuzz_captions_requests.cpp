// libFuzzer target for the caption editor server's request handling (caption/caption_requests.cpp)
// and the bulk operations it hands to the store (caption/caption_bulk.cpp), called as
// CaptionServer calls them, without a socket or a dataset on disk. The first byte chooses:
//  0: the rest is a /files/ or /thumbs/ target after the prefix; decode_request_path. Invariant:
//     a decoded path is relative, '/'-separated, has no empty, "." or ".." segment, no NUL or
//     backslash, so joined under a folder it names something inside it (lexically).
//  1: an image id and a PUT /api/caption body (split at the first NUL): parse_image_id,
//     parse_caption_edit.
//  2: a POST /api/bulk body: parse_bulk_request, then the operation on fixed captions (the
//     regex one within its step budget, caption/bulk_regex.h: a pattern that backtracks without
//     end must end in ls::Error, not in libFuzzer's timeout). Invariants per kind: dedupe and
//     sort_tags keep the set of tags, remove_tags leaves none of them, add_tag/add_prefix leave
//     each of its tags in, rename_tag leaves `from` out (unless `to` names it too); each of those is idempotent.
//  3: a POST /api/undo body: parse_undo_request.
// fuzz-what: caption editor requests (paths, ids, save/bulk/undo bodies, bulk operations)
// fuzz-sources: src/caption/caption_requests.cpp src/caption/caption_bulk.cpp src/caption/bulk_regex.cpp
// fuzz-sources: src/core/strings.cpp
// fuzz-libs: -lpcre2-8
// fuzz-max-len: 1024
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "caption/caption_bulk.h"
#include "caption/caption_requests.h"
#include "core/error.h"
#include "core/strings.h"

namespace {

using ls::caption::BulkKind;

void fz_check_path(const std::string& raw) {
  const auto decoded = ls::caption::decode_request_path(raw);
  if (!decoded) return;
  const std::string& p = *decoded;
  if (p.empty() || p.front() == '/' || p.find('\0') != std::string::npos || p.find('\\') != std::string::npos)
    __builtin_trap();
  size_t start = 0;
  while (start <= p.size()) {
    const size_t slash = std::min(p.find('/', start), p.size());
    const std::string segment = p.substr(start, slash - start);
    if (segment.empty() || segment == "." || segment == "..") __builtin_trap();
    start = slash + 1;
  }
}

void fz_check_edit(const std::string& input) {
  const size_t nul = input.find('\0');
  const std::string id = input.substr(0, nul);
  if (auto parsed = ls::caption::parse_image_id(id)) {
    if (std::to_string(parsed->first).size() > 6 || id.substr(id.find(':') + 1) != parsed->second) __builtin_trap();
  }
  if (nul == std::string::npos) return;
  const nlohmann::json body = nlohmann::json::parse(input.substr(nul + 1), nullptr, false);
  if (!body.is_object()) return;
  ls::caption::CaptionEdit edit;
  if (ls::caption::parse_caption_edit(body, edit).empty() && edit.id != body["id"].get<std::string>()) __builtin_trap();
}

std::set<std::string> fz_tag_set(const std::string& text) {
  const auto tags = ls::caption::caption_tags(text);
  return {tags.begin(), tags.end()};
}

// Applies `op` to each caption and checks what the kind promises.
void fz_check_bulk_op(const ls::caption::BulkOp& op) {
  static const std::vector<std::string> kCaptions = {
      "lsshape, red circle, large\n", "a, b, a, c", "", "   ", "\xe5\x86\x99\xe7\x9c\x9f, caf\xc3\xa9, b, b\n", ",,x,, y ,"};
  if (op.kind == BulkKind::kRegexReplace) {
    const ls::caption::BulkRegex re(op.find);  // ls::Error when invalid: the server's 400
    for (const std::string& text : kCaptions) (void)ls::caption::apply_bulk_op(op, text, &re);
    (void)ls::caption::apply_bulk_op(op, std::string(200, 'a') + ", " + kCaptions[0], &re);  // room to backtrack
    return;
  }
  for (const std::string& text : kCaptions) {
    const std::string out = ls::caption::apply_bulk_op(op, text, nullptr);
    const std::string again = ls::caption::apply_bulk_op(op, out, nullptr);
    const auto before = fz_tag_set(text), after = fz_tag_set(out);
    const auto tags = ls::caption::caption_tags(out);
    switch (op.kind) {
      case BulkKind::kDedupe:
        if (after != before || std::set<std::string>(tags.begin(), tags.end()).size() != tags.size()) __builtin_trap();
        break;
      case BulkKind::kSortTags:
        if (after != before || !std::is_sorted(tags.begin(), tags.end())) __builtin_trap();
        break;
      case BulkKind::kRemoveTags:
        for (const auto& t : op.tags)
          if (after.count(ls::core::trim(t))) __builtin_trap();
        break;
      case BulkKind::kAddTag:
      case BulkKind::kAddPrefix:
        for (const auto& t : ls::caption::caption_tags(op.prefix))
          if (!after.count(t)) __builtin_trap();
        break;
      case BulkKind::kRenameTag:
        if (!fz_tag_set(op.replace).count(ls::core::trim(op.find)) && after.count(ls::core::trim(op.find))) __builtin_trap();
        break;
      default: continue;  // find_replace, retag: nothing to compare
    }
    if (again != out) __builtin_trap();
  }
}

void fz_check_bulk(const std::string& text) {
  const nlohmann::json body = nlohmann::json::parse(text, nullptr, false);
  if (!body.is_object()) return;
  ls::caption::BulkRequest request;
  if (!ls::caption::parse_bulk_request(body, request).empty()) return;
  if (request.op.kind != BulkKind::kRetag) fz_check_bulk_op(request.op);
}

void fz_check_undo(const std::string& text) {
  const nlohmann::json body = nlohmann::json::parse(text, nullptr, false);
  std::vector<std::pair<size_t, std::string>> runs;
  if (ls::caption::parse_undo_request(body, runs).empty()) {
    for (const auto& [root, run] : runs)
      if (run.empty()) __builtin_trap();
  } else if (!runs.empty()) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 4) {
      case 0: fz_check_path(rest); break;
      case 1: fz_check_edit(rest); break;
      case 2: fz_check_bulk(rest); break;
      default: fz_check_undo(rest); break;
    }
  } catch (const ls::Error&) {
  }
  return 0;
}
