// `lorastudio caption DIR`: tags every image of a dataset folder with a WD14 tagger and / or
// describes it with Florence-2, and writes its caption file — kohya's
// tag_images_by_wd14_tagger.py, with the user's captions safe
// (existing files skipped unless asked, every change backed up and undoable), images decoded on
// worker threads while the model runs batches, and a summary that names every failed image.
// `caption retag` re-slices saved probabilities; `caption undo` reverts a run.
#pragma once

#include <string>
#include <vector>

#include "caption/caption_text.h"
#include "caption/tag_selection.h"

namespace ls::caption {

struct CaptionOptions {
  std::string dir;        // dataset folder
  std::vector<std::string> captioners{"wd14"};  // "wd14", "florence2" (each runs once per image)
  std::string model_dir;  // tagger folder
  std::string florence2_dir;  // Florence-2 folder
  std::string florence2_task = "<DETAILED_CAPTION>";
  int64_t max_new_tokens = 1024;
  int64_t num_beams = 0;  // 0: the Florence-2 config's (3)
  std::vector<std::string> strip_phrases;  // openings removed from Florence-2's text
  std::string combine;    // "" : "{prefix}{tags}. {caption}" with both captioners, "{prefix}{caption}" with florence2
  SelectionOptions selection;
  ExistingMode existing = ExistingMode::kSkip;
  bool recursive = false;
  std::string caption_extension = ".txt";
  int batch_size = 8;
  int loader_threads = 2;  // decode + preprocess workers
  bool dry_run = false;
  bool save_probs = false;
  bool frequency_tags = false;
  std::string device = "cpu";
  std::string dtype = "fp32";
  bool show_progress = true;
};

struct CaptionSummary {
  std::string run;           // the history's run id ("" for a dry run or when nothing changed)
  int images = 0;            // found
  int captioned = 0;         // caption file written (or, dry run, would be)
  int unchanged = 0;         // the file already held that text
  int skipped = 0;           // an existing caption kept (--existing skip)
  std::vector<std::string> failed;  // "path: why", one per image that could not be read
  double seconds = 0;
  double images_per_second = 0;  // over the images the model ran on
  std::vector<std::pair<std::string, int64_t>> frequencies;  // --frequency_tags
  std::vector<std::string> dry_run_lines;                    // "path: old -> new"
  std::string log_path;      // the run's JSON log
};

/// The images of a folder: png, jpg, jpeg, webp, bmp (any case), sorted; with `recursive`, of
/// every subfolder too except hidden ones (".lorastudio" holds lorastudio's own files).
std::vector<std::string> caption_images(const std::string& dir, bool recursive);

CaptionSummary run_caption(const CaptionOptions& options);

struct RetagOptions {
  std::string dir;
  SelectionOptions selection;
  ExistingMode existing = ExistingMode::kOverwrite;
  std::string caption_extension = ".txt";
  bool dry_run = false;
  bool frequency_tags = false;
};

/// The captions of every image with saved probabilities, selected again with new options.
CaptionSummary run_retag(const RetagOptions& options);

}  // namespace ls::caption
