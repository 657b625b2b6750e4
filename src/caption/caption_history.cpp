#include "caption/caption_history.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/line_log.h"

namespace ls::caption {

namespace fs = std::filesystem;

namespace {

std::string utc_now(const char* format) {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

fs::path state_dir(const fs::path& dataset_dir) { return dataset_dir / ".lorastudio"; }

nlohmann::json optional_text(const std::optional<std::string>& t) { return t ? nlohmann::json(*t) : nlohmann::json(); }

}  // namespace

std::optional<std::string> read_caption_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  return core::read_file(path);
}

std::string new_run_id() {
  // Random per process (two processes in one second differ), counted within one: ids must
  // differ, not be reproducible.
  static const unsigned base = std::random_device{}();
  static std::atomic<unsigned> count{0};
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%04x", (base + count++) & 0xffffu);
  return utc_now("%Y%m%d-%H%M%S") + "-" + suffix;
}

fs::path history_path(const fs::path& dataset_dir) { return state_dir(dataset_dir) / "caption_history.jsonl"; }

std::vector<CaptionChange> read_history(const fs::path& dataset_dir) {
  std::vector<CaptionChange> changes;
  std::ifstream in(history_path(dataset_dir));
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;  // a line torn by a crash mid-append
    CaptionChange c;
    c.run = j.value("run", "");
    c.path = j.value("path", "");
    if (j.contains("old") && j["old"].is_string()) c.old_text = j["old"].get<std::string>();
    if (j.contains("new") && j["new"].is_string()) c.new_text = j["new"].get<std::string>();
    c.source = j.value("source", "");
    c.time = j.value("time", "");
    if (!c.run.empty() && !c.path.empty()) changes.push_back(std::move(c));
  }
  return changes;
}

CaptionWriter::CaptionWriter(fs::path dataset_dir, std::string run, std::string source)
    : dir_(std::move(dataset_dir)), run_(std::move(run)), source_(std::move(source)) {}

namespace {

// After a change was taken back: the backup folders it made and left empty go too (a failed change
// leaves no trace), up to caption_backups/ itself; fs::remove refuses a folder that is not empty.
void remove_empty_backup_folders(const fs::path& backup, const fs::path& dataset_dir) {
  const fs::path top = state_dir(dataset_dir) / "caption_backups";
  std::error_code ec;
  for (fs::path dir = backup.parent_path(); dir != top && dir.has_relative_path(); dir = dir.parent_path())
    if (!fs::remove(dir, ec) || ec) break;
}

}  // namespace

CaptionWriter::Recorded CaptionWriter::record(const fs::path& caption_file, const std::optional<std::string>& old_text,
                                              const std::optional<std::string>& new_text) {
  const std::string rel = fs::relative(caption_file, dir_).generic_string();
  LS_CHECK(!rel.empty() && rel.rfind("..", 0) != 0, caption_file.string(), ": outside the dataset folder ",
           dir_.string());
  Recorded r;
  // Every failure here names the caption file first: it is what the user asked to change.
  const std::string unchanged = caption_file.string() + ": left unchanged: ";
  std::error_code ec;
  fs::create_directories(state_dir(dir_), ec);
  if (ec) LS_FAIL(unchanged, core::write_error_message(state_dir(dir_), "cannot create the caption history folder", ec.value()));
  if (old_text) {
    auto backup = state_dir(dir_) / "caption_backups" / run_ / rel;
    fs::create_directories(backup.parent_path(), ec);
    if (ec) LS_FAIL(unchanged, core::write_error_message(backup.parent_path(), "cannot create the backup folder", ec.value()));
    const bool existed = fs::exists(backup, ec);
    try {
      core::write_file_atomic(backup, *old_text);
    } catch (const Error& e) {
      if (!existed) remove_empty_backup_folders(backup, dir_);
      LS_FAIL(unchanged, e.what());
    }
    if (!existed) r.new_backup = backup;
  }
  nlohmann::json j = {{"run", run_},     {"path", rel},         {"old", optional_text(old_text)},
                      {"new", optional_text(new_text)}, {"source", source_}, {"time", utc_now("%Y-%m-%dT%H:%M:%SZ")}};
  // One write of a whole line, then fsync: the history is on disk before the caption changes.
  const auto path = history_path(dir_);
  off_t size = -1;
  if (const int err = core::append_line(path, j.dump(), /*sync=*/true, size); err != 0) {
    if (!r.new_backup.empty() && fs::remove(r.new_backup, ec)) remove_empty_backup_folders(r.new_backup, dir_);
    LS_FAIL(unchanged, core::write_error_message(path, "cannot append the change record", err));
  }
  ++changed_;
  r.history_size = size;
  return r;
}

void CaptionWriter::unrecord(const Recorded& recorded) {
  std::error_code ec;
  if (!recorded.new_backup.empty() && fs::remove(recorded.new_backup, ec))
    remove_empty_backup_folders(recorded.new_backup, dir_);
  if (recorded.history_size < 0) return;
  --changed_;
  const auto path = history_path(dir_);
  if (recorded.history_size == 0) fs::remove(path, ec);
  else (void)!::truncate(path.c_str(), static_cast<off_t>(recorded.history_size));  // shrinking needs no space
}

bool CaptionWriter::write(const fs::path& caption_file, const std::string& text) {
  return write(caption_file, text, read_caption_file(caption_file));
}

bool CaptionWriter::write(const fs::path& caption_file, const std::string& text,
                          const std::optional<std::string>& old_text) {
  if (old_text && *old_text == text) return false;
  const Recorded recorded = record(caption_file, old_text, text);
  try {
    core::write_file_atomic(caption_file, text);
  } catch (const Error&) {
    unrecord(recorded);
    throw;
  }
  return true;
}

void CaptionWriter::remove(const fs::path& caption_file) {
  auto old_text = read_caption_file(caption_file);
  if (!old_text) return;
  const Recorded recorded = record(caption_file, old_text, std::nullopt);
  std::error_code ec;
  fs::remove(caption_file, ec);
  if (ec) {
    unrecord(recorded);
    LS_FAIL(core::write_error_message(caption_file, "cannot remove", ec.value()));
  }
}

UndoReport undo_run(const fs::path& dataset_dir, const std::string& run) {
  auto history = read_history(dataset_dir);
  LS_CHECK(!history.empty(), history_path(dataset_dir).string(),
           ": no caption history; lorastudio has not changed captions in this folder");
  std::string target = run;
  if (target.empty()) {
    for (auto it = history.rbegin(); it != history.rend() && target.empty(); ++it)
      if (it->source.rfind("undo ", 0) != 0) target = it->run;
    LS_CHECK(!target.empty(), history_path(dataset_dir).string(), ": every recorded run is an undo; pass --run");
  }
  // The run's net effect per file: the text before its first change, after its last.
  std::map<std::string, std::pair<std::optional<std::string>, std::optional<std::string>>> effect;
  for (const auto& c : history) {
    if (c.run != target) continue;
    auto [it, inserted] = effect.try_emplace(c.path, c.old_text, c.new_text);
    if (!inserted) it->second.second = c.new_text;
  }
  if (effect.empty()) {
    std::set<std::string> runs;
    for (const auto& c : history) runs.insert(c.run);
    std::string list;
    for (const auto& r : runs) list += (list.empty() ? "" : ", ") + r;
    LS_FAIL(history_path(dataset_dir).string(), ": no run '", target, "'; recorded runs: ", list);
  }
  UndoReport report;
  report.run = target;
  report.undo_run = new_run_id();
  CaptionWriter writer(dataset_dir, report.undo_run, "undo " + target);
  for (const auto& [rel, texts] : effect) {
    const auto& [before, after] = texts;
    const fs::path file = dataset_dir / rel;
    auto now = read_caption_file(file);
    if (now == before) {
      ++report.unchanged;
    } else if (now != after) {
      const std::string was = before ? "its text before the run is in " +
                                           (state_dir(dataset_dir) / "caption_backups" / target / rel).string()
                                     : "it did not exist before the run";
      report.conflicts.push_back(rel + ": edited since run " + target + "; left as it is (" + was + ")");
    } else if (before) {
      writer.write(file, *before);
      ++report.restored;
    } else {
      writer.remove(file);
      ++report.removed;
    }
  }
  return report;
}

}  // namespace ls::caption
