// A dataset folder's captions as the caption editor (issue 16) works on them: every image with its
// caption text, a hash of that text (a save names the text it replaces, so an edit made on disk
// meanwhile is a conflict, not a loss), flags (missing, empty, duplicate caption), tag counts, and
// bulk operations over a selection. Every write goes through CaptionWriter: backed up, recorded
// in the same history `caption undo` reads, one run per save or bulk operation.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "caption/caption_bulk.h"

namespace ls::caption {

struct CaptionEntry {
  std::string image;                  // relative to the folder, '/'
  std::string caption_path;           // relative, '/'
  std::optional<std::string> text;    // none: no caption file
  std::string hash;                   // SHA-256 hex of the text; "" when there is none
  std::vector<std::string> tags;      // text split at ',' with blanks trimmed, empty pieces dropped
  bool missing = false, empty = false, duplicate = false;  // duplicate: another image has the same text
  // The image or its caption file is a link that leads out of the folder: neither is read,
  // served or written (a dataset from elsewhere must not make the editor reach other files).
  bool outside = false;
};

/// SHA-256 hex of a caption's bytes (what a save must name as the text it replaces).
std::string caption_hash(const std::string& text);

struct SaveResult {
  bool saved = false;
  std::string conflict;                 // non-empty: the file changed on disk since it was read
  std::optional<std::string> on_disk;   // its current text, for the conflict message
  std::string run;                      // history run id of the change
};

class CaptionStore {
 public:
  /// The images of `dir` (recursive, hidden folders left out) and their `caption_extension` files.
  CaptionStore(std::filesystem::path dir, std::string caption_extension = ".txt", bool recursive = true);

  /// Re-reads every caption file (the page reloads).
  std::vector<CaptionEntry> entries() const;
  /// Tag -> number of captions holding it.
  std::map<std::string, int64_t> tag_counts() const;

  /// Writes `text` as image's caption if the file still holds the text whose hash is
  /// `expected_hash` ("" = the file must not exist); otherwise a conflict naming both texts.
  SaveResult save(const std::string& image, const std::string& text, const std::string& expected_hash);

  /// Applies `op` to the captions of `images` (all of them when empty), recorded as one run;
  /// returns the images whose file changed. ls::Error for an invalid regex or an unknown image.
  /// Images linked from outside the folder are left out.
  std::vector<std::string> bulk(const BulkOp& op, const std::vector<std::string>& images, std::string* run = nullptr,
                                std::vector<BulkChange>* changes = nullptr);
  /// What bulk() would write, writing nothing.
  std::vector<BulkChange> preview(const BulkOp& op, const std::vector<std::string>& images) const;

  /// True when `image` (relative, '/') is one of the folder's images.
  bool has_image(const std::string& image) const;
  /// The image's file when it may be read (inside the folder after resolving links); else none.
  std::optional<std::filesystem::path> image_file(const std::string& image) const;
  /// Images with saved tagger probabilities (DIR/.lorastudio/tag_probs.jsonl).
  std::vector<std::string> images_with_probs() const;

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& caption_extension() const { return extension_; }
  const std::vector<std::string>& images() const { return images_; }

 private:
  std::filesystem::path caption_file(const std::string& image) const;
  bool leads_outside(const std::filesystem::path& file) const;

  std::filesystem::path dir_, canonical_dir_;
  std::string extension_;
  std::vector<std::string> images_;  // relative, sorted
};

}  // namespace ls::caption
