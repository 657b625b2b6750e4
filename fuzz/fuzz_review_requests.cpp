// libFuzzer target for the review server's request handling (review/review_requests.cpp), called
// as ReviewServer calls it, without a socket. The first byte chooses:
//  - even: the rest is a request target's path as sent; resolve_file_request over a fixed sheet
//    folder (made once in LLVMFuzzerInitialize: cell PNGs, sheet.json, selections.json, a text
//    file, links to a file and a folder outside it, a link loop). Invariant: a path it serves is
//    a regular .png file whose resolved path lies strictly inside the resolved folder; every
//    refusal is 400, 403 or 404 with a message.
//  - odd: the rest is a PUT /api/selections/<id> body; parsed as json_object_body does, then
//    parse_selection_update and apply_selection_update on a fixed selection map. Invariant: what
//    save_selections would write (selections_to_json, dump(2)) parses back through
//    parse_selections to the same map; and a refused body changes nothing.
// fuzz-what: review server requests (file paths, selection bodies)
// fuzz-sources: src/review/review_requests.cpp src/review/review_store.cpp src/sheet/sheet_file.cpp
// fuzz-sources: src/core/atomic_file.cpp src/core/path_within.cpp src/core/strings.cpp
// fuzz-max-len: 1024
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/path_within.h"
#include "review/review_requests.h"
#include "review/review_store.h"

namespace {

namespace fs = std::filesystem;

fs::path fz_sheet_dir, fz_sheet_root;  // as given, and resolved

void fz_write(const fs::path& file, const std::string& text) { std::ofstream(file, std::ios::binary) << text; }

// A sheet folder with what a real one holds, and what an attacker would aim at beside it.
void fz_make_sheet_folder() {
  char pattern[] = "/tmp/fuzz_review_requests.XXXXXX";
  const char* made = mkdtemp(pattern);
  if (!made) std::abort();
  const fs::path base(made);
  fz_sheet_dir = base / "sheet";
  fs::create_directories(fz_sheet_dir / "cells");
  fs::create_directories(base / "outside");
  fz_write(base / "outside" / "secret.png", "outside");
  fz_write(base / "outside.png", "outside");
  for (const char* id : {"00000000000000a0", "00000000000000a1"}) fz_write(fz_sheet_dir / "cells" / (std::string(id) + ".png"), "png");
  fz_write(fz_sheet_dir / "grid-000.png", "png");
  fz_write(fz_sheet_dir / "sheet.json", "{}");
  fz_write(fz_sheet_dir / "selections.json", "{}");
  fz_write(fz_sheet_dir / "notes.txt", "text");
  fs::create_symlink(base / "outside" / "secret.png", fz_sheet_dir / "cells" / "link.png");
  fs::create_symlink("../../outside.png", fz_sheet_dir / "cells" / "up.png");
  fs::create_directory_symlink(base / "outside", fz_sheet_dir / "out");
  fs::create_directory_symlink(fz_sheet_dir, fz_sheet_dir / "cells" / "self");
  fs::create_symlink("loop.png", fz_sheet_dir / "cells" / "loop.png");
  fz_sheet_root = fs::canonical(fz_sheet_dir);
}

void fz_check_file(const std::string& target) {
  const ls::review::FileRequest r = ls::review::resolve_file_request(fz_sheet_dir, target);
  if (r.status == 0) {
    std::error_code ec;
    if (r.file != fs::canonical(r.file, ec) || ec) __builtin_trap();
    if (!ls::core::path_within(fz_sheet_root, r.file) || r.file == fz_sheet_root) __builtin_trap();
    if (r.file.extension() != ".png" || !fs::is_regular_file(r.file)) __builtin_trap();
    if (target.find('%') != std::string::npos) __builtin_trap();  // escapes are refused, never decoded
  } else if ((r.status != 400 && r.status != 403 && r.status != 404) || r.message.empty()) {
    __builtin_trap();
  }
}

void fz_check_body(const std::string& text) {
  using ls::review::CellState;
  static const ls::review::Selections kBefore = {
      {"00000000000000a0", {CellState::kPicked, "sharp"}},
      {"00000000000000a1", {CellState::kNone, "a note"}},
  };
  const nlohmann::json body = nlohmann::json::parse(text, nullptr, false);  // as json_object_body
  if (!body.is_object()) return;
  ls::review::SelectionUpdate update;
  const std::string refused = ls::review::parse_selection_update(body, update);
  if (!refused.empty()) {
    if (update.state || update.note) __builtin_trap();
    return;
  }
  ls::review::Selections next = kBefore;
  for (const auto& [id, current] : kBefore) {
    const ls::review::Selection s = ls::review::apply_selection_update(current, update);
    if (s.state == CellState::kNone && s.note.empty()) {
      next.erase(id);
    } else {
      next[id] = s;
    }
  }
  const std::string saved = ls::review::selections_to_json(next).dump(2) + "\n";  // save_selections
  ls::review::Selections back;
  try {
    back = ls::review::parse_selections(nlohmann::json::parse(saved), "fuzz");
  } catch (...) {
    __builtin_trap();
  }
  if (back.size() != next.size()) __builtin_trap();
  for (const auto& [id, s] : next) {
    auto it = back.find(id);
    if (it == back.end() || it->second.state != s.state || it->second.note != s.note) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fz_make_sheet_folder();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] % 2 == 0) {
      fz_check_file(rest);
    } else {
      fz_check_body(rest);
    }
  } catch (const ls::Error&) {
    __builtin_trap();  // both are answers, never exceptions
  }
  return 0;
}
