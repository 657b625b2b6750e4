#include "caption/caption_doctor.h"

#include <filesystem>
#include <set>

#include "caption/caption_store.h"
#include "data/dataset.h"
#include "data/dataset_config.h"

namespace ls::caption {

namespace fs = std::filesystem;

std::map<std::string, DoctorNote> run_doctor(const CaptionStore& store, bool show_progress) {
  data::DataConfig config;
  config.source = store.dir().string();
  data::DatasetConfig dataset;
  std::set<std::string> folders;
  for (const auto& image : store.images())  // not into a linked folder that leads out
    if (store.image_file(image)) folders.insert(fs::path(image).parent_path().generic_string());
  for (const auto& folder : folders) {
    data::SubsetConfig subset;
    subset.image_dir = (store.dir() / folder).lexically_normal().string();
    subset.caption_extension = store.caption_extension();
    dataset.subsets.push_back(subset);
  }
  config.datasets.push_back(dataset);
  data::Findings findings;
  data::ScanOptions scan;
  scan.show_progress = show_progress;
  auto indexes = data::index_datasets(config, findings, scan);
  // Findings name the image or its caption file: both lead to the image.
  std::map<std::string, std::string> image_of;
  for (const auto& image : store.images()) {
    const fs::path file = (store.dir() / image).lexically_normal();
    image_of[file.string()] = image;
    image_of[fs::path(file).replace_extension(store.caption_extension()).string()] = image;
  }
  std::map<std::string, DoctorNote> notes;
  for (const auto& f : findings) {
    if (f.severity != data::Severity::kError) continue;
    auto it = image_of.find(fs::path(f.path).lexically_normal().string());
    if (it == image_of.end()) continue;
    DoctorNote& note = notes[it->second];
    note.refused = true;
    note.problems.push_back(f.message);
  }
  for (const auto& index : indexes) {
    for (const auto& rec : index.images) {
      auto it = image_of.find(fs::path(rec.path).lexically_normal().string());
      if (it == image_of.end()) continue;
      DoctorNote& note = notes[it->second];
      note.width = rec.size.width;
      note.height = rec.size.height;
    }
  }
  return notes;
}

}  // namespace ls::caption
