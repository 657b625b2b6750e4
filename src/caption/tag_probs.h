// `caption --save-probs`: every tag's probability (>= 0.05, and every rating) per image, kept in
// DIR/.lorastudio/tag_probs.jsonl (one JSON line per image: path relative to DIR, model, and
// [index, name, category, probability] per tag) so `caption retag` re-slices the thresholds
// without running the model again.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "caption/selected_tags.h"

namespace ls::caption {

inline constexpr float kSavedProbabilityFloor = 0.05f;

struct SavedTag {
  int64_t index = 0;  // model output
  std::string name;   // as selected_tags.csv writes it
  int64_t category = 0;
  float probability = 0;
};

struct ImageProbs {
  std::string model;  // the tagger folder's name
  std::vector<SavedTag> tags;  // ascending index
};

std::filesystem::path tag_probs_path(const std::filesystem::path& dataset_dir);

/// The tags worth keeping of one image's probabilities (model output order).
std::vector<SavedTag> tags_to_save(const SelectedTags& tags, const float* probabilities);

/// Image path (relative, '/') -> its probabilities; empty when the file does not exist. Malformed
/// lines are an error naming the file and line.
std::map<std::string, ImageProbs> read_tag_probs(const std::filesystem::path& dataset_dir);
/// Replaces the file atomically with `entries`.
void write_tag_probs(const std::filesystem::path& dataset_dir, const std::map<std::string, ImageProbs>& entries);

/// A tag list and a probability vector over exactly the saved tags (model order kept), on which
/// TagSelector gives what it gives on the full vector at any threshold >= 0.05.
SelectedTags saved_tag_list(const ImageProbs& probs);
std::vector<float> saved_probabilities(const ImageProbs& probs);

}  // namespace ls::caption
