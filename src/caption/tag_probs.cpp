#include "caption/tag_probs.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace ls::caption {

namespace fs = std::filesystem;

fs::path tag_probs_path(const fs::path& dataset_dir) { return dataset_dir / ".lorastudio" / "tag_probs.jsonl"; }

std::vector<SavedTag> tags_to_save(const SelectedTags& tags, const float* probabilities) {
  std::vector<SavedTag> out;
  for (int64_t i = 0; i < tags.size(); ++i) {
    const float p = probabilities[i];
    // Ratings are few and the top one is chosen by comparison, so all are kept.
    if (p >= kSavedProbabilityFloor || tags.categories[i] == kRatingCategory)
      out.push_back({i, tags.names[i], tags.categories[i], p});
  }
  return out;
}

std::map<std::string, ImageProbs> read_tag_probs(const fs::path& dataset_dir) {
  std::map<std::string, ImageProbs> out;
  const auto path = tag_probs_path(dataset_dir);
  std::ifstream in(path);
  if (!in) return out;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    auto bad = [&](const char* what) {
      LS_FAIL(path.string(), ":", line_no, ": ", what, "; run `lorastudio caption --save-probs` again to rewrite it");
    };
    if (j.is_discarded() || !j.is_object() || !j.contains("path") || !j["path"].is_string() || !j.contains("tags") ||
        !j["tags"].is_array())
      bad("not a tag-probabilities line");
    ImageProbs probs;
    probs.model = j.value("model", "");
    for (const auto& t : j["tags"]) {
      if (!t.is_array() || t.size() != 4 || !t[0].is_number_integer() || !t[1].is_string() ||
          !t[2].is_number_integer() || !t[3].is_number())
        bad("a tag is not [index, name, category, probability]");
      probs.tags.push_back({t[0].get<int64_t>(), t[1].get<std::string>(), t[2].get<int64_t>(), t[3].get<float>()});
    }
    out[j["path"].get<std::string>()] = std::move(probs);
  }
  return out;
}

void write_tag_probs(const fs::path& dataset_dir, const std::map<std::string, ImageProbs>& entries) {
  std::string text;
  for (const auto& [path, probs] : entries) {
    nlohmann::json tags = nlohmann::json::array();
    for (const auto& t : probs.tags) tags.push_back({t.index, t.name, t.category, t.probability});
    text += nlohmann::json{{"path", path}, {"model", probs.model}, {"tags", tags}}.dump() + "\n";
  }
  fs::create_directories(tag_probs_path(dataset_dir).parent_path());
  core::write_file_atomic(tag_probs_path(dataset_dir), text);
}

SelectedTags saved_tag_list(const ImageProbs& probs) {
  SelectedTags tags;
  for (const auto& t : probs.tags) {
    const int64_t row = tags.size();
    tags.names.push_back(t.name);
    tags.categories.push_back(t.category);
    tags.tag_ids.push_back(-1);
    if (t.category == kRatingCategory) tags.rating.push_back(row);
    else if (t.category == kGeneralCategory) tags.general.push_back(row);
    else if (t.category == kCharacterCategory) tags.character.push_back(row);
    else tags.other.push_back(row);
  }
  return tags;
}

std::vector<float> saved_probabilities(const ImageProbs& probs) {
  std::vector<float> p;
  for (const auto& t : probs.tags) p.push_back(t.probability);
  return p;
}

}  // namespace ls::caption
