// The user's captions are never lost: every change lorastudio makes to a caption file is
// recorded before it happens — the old text copied under DIR/.lorastudio/caption_backups/<run>/
// and one JSON line appended to DIR/.lorastudio/caption_history.jsonl (run, path, old, new,
// source, time) — and the file is replaced atomically. Any run can then be undone, file by file,
// without touching files edited since. The caption editor (issue 16) appends to the same history.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ls::caption {

struct CaptionChange {
  std::string run;
  std::string path;                     // relative to the dataset folder, '/' separated
  std::optional<std::string> old_text;  // none: the file did not exist
  std::optional<std::string> new_text;  // none: the file was removed (undo of a created file)
  std::string source;                   // "wd14 wd-vit-tagger-v3", "retag", "undo 20261202-...", ...
  std::string time;                     // UTC, ISO 8601
};

/// A caption file's bytes, or none when it does not exist.
std::optional<std::string> read_caption_file(const std::filesystem::path& path);

/// "20261202-133005-4f2a": UTC time plus 4 hex digits of randomness (two runs in one second differ).
std::string new_run_id();

std::filesystem::path history_path(const std::filesystem::path& dataset_dir);

/// Every recorded change, oldest first; a torn last line (a crash mid-append) is skipped.
std::vector<CaptionChange> read_history(const std::filesystem::path& dataset_dir);

/// Writes caption files of one dataset folder for one run.
class CaptionWriter {
 public:
  CaptionWriter(std::filesystem::path dataset_dir, std::string run, std::string source);

  /// Replaces `caption_file` (inside the dataset folder) with `text`: backup, history line, then
  /// an atomic write. Returns false (and records nothing) when the file already holds `text`.
  bool write(const std::filesystem::path& caption_file, const std::string& text);
  /// The same when the caller has just read the file: `old_text` is its content (none: absent).
  bool write(const std::filesystem::path& caption_file, const std::string& text,
             const std::optional<std::string>& old_text);
  /// Removes the file, recorded the same way (used by undo for files a run created).
  void remove(const std::filesystem::path& caption_file);

  const std::string& run() const { return run_; }
  int changed() const { return changed_; }

 private:
  struct Recorded {
    int64_t history_size = -1;               // the history's size before its line
    std::filesystem::path new_backup;        // a backup this record created ("" if none)
  };
  /// A failure (a full disk) is an error naming `caption_file` and what could not be written.
  Recorded record(const std::filesystem::path& caption_file, const std::optional<std::string>& old_text,
                  const std::optional<std::string>& new_text);
  /// Takes back what record() added when the change itself failed (a full disk), so the history
  /// never lists a change that did not happen.
  void unrecord(const Recorded& recorded);

  std::filesystem::path dir_;
  std::string run_, source_;
  int changed_ = 0;
};

struct UndoReport {
  std::string run;          // the run undone
  std::string undo_run;     // the run id the undo itself is recorded under
  int restored = 0;         // files back to their text before the run
  int removed = 0;          // files the run created, removed
  int unchanged = 0;        // already at their old text
  std::vector<std::string> conflicts;  // "path: edited since the run (...)"; left as they are
};

/// Undoes one run (`run` empty: the newest run that is not itself an undo): each file the run
/// changed goes back to the text it had before, if it still holds what the run wrote.
/// ls::Error when the folder has no history or no such run.
UndoReport undo_run(const std::filesystem::path& dataset_dir, const std::string& run);

}  // namespace ls::caption
