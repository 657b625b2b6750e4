#include "caption/caption_run.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "caption/caption_history.h"
#include "caption/caption_template.h"
#include "caption/florence2_caption.h"
#include "caption/selected_tags.h"
#include "caption/tag_probs.h"
#include "caption/tagger_input.h"
#include "caption/tagger_model.h"
#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/runtime.h"
#include "io/image.h"
#include "data/dataset.h"
#include "data/findings.h"

namespace ls::caption {

namespace fs = std::filesystem;

namespace {

struct Item {
  fs::path image, caption;
  std::string rel;  // image path relative to the dataset folder
};

fs::path caption_file_of(const fs::path& image, const std::string& extension) {
  fs::path p = image;
  return p.replace_extension(extension);
}

std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// Each captioner's input for one decoded image ([1,3,S,S] tensors, in captioner order).
using Prepare = std::function<std::vector<torch::Tensor>(const cv::Mat& rgb)>;

// Decodes and preprocesses images on worker threads, at most `window` ahead of the consumer,
// handing them over in order.
class Prefetcher {
 public:
  Prefetcher(const std::vector<Item>& items, Prepare prepare, int threads, size_t window)
      : items_(items), prepare_(std::move(prepare)), window_(window), results_(items.size()) {
    for (int t = 0; t < std::max(1, threads); ++t) workers_.emplace_back([this] { work(); });
  }
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  /// Item i's inputs, or its error text.
  std::pair<std::vector<torch::Tensor>, std::string> take(size_t i) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return results_[i].has_value(); });
    auto r = std::move(*results_[i]);
    results_[i].reset();
    consumed_ = i + 1;
    cv_.notify_all();
    return r;
  }

 private:
  void work() {
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || (next_ < items_.size() && next_ < consumed_ + window_); });
        if (stop_ || next_ >= items_.size()) return;
        i = next_++;
      }
      std::pair<std::vector<torch::Tensor>, std::string> r;
      try {
        r.first = prepare_(io::read_image_rgb(items_[i].image.string()));
      } catch (const std::exception& e) {
        r.second = e.what();
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        results_[i] = std::move(r);
      }
      cv_.notify_all();
    }
  }

  const std::vector<Item>& items_;
  Prepare prepare_;
  size_t window_;
  std::vector<std::optional<std::pair<std::vector<torch::Tensor>, std::string>>> results_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t next_ = 0, consumed_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

// Writes (or, dry run, describes) one caption.
class Output {
 public:
  Output(const fs::path& dir, ExistingMode mode, bool dry_run, const std::string& source)
      : mode_(mode), dry_run_(dry_run), writer_(dir, new_run_id(), source) {}

  /// `text_for(old)`: the file's new content given its current one.
  void put(const Item& item, const std::function<std::string(const std::optional<std::string>&)>& text_for,
           CaptionSummary& s) {
    auto old = read_caption_file(item.caption);
    const std::string text = text_for(old);
    if (old && *old == text) {
      ++s.unchanged;
      return;
    }
    ++s.captioned;
    if (dry_run_) {
      s.dry_run_lines.push_back(item.caption.string() + ": " + (old ? "'" + one_line(*old) + "'" : "(new)") + " -> '" +
                                one_line(text) + "'");
    } else {
      writer_.write(item.caption, text, old);  // the text just read: one read per file
    }
  }
  std::string run() const { return writer_.changed() ? writer_.run() : ""; }

 private:
  ExistingMode mode_;
  bool dry_run_;
  CaptionWriter writer_;
};

void write_run_log(const fs::path& dir, const std::string& command, const nlohmann::json& options, CaptionSummary& s) {
  if (s.run.empty()) return;
  nlohmann::json j = {{"command", command},     {"run", s.run},           {"options", options},
                      {"images", s.images},      {"captioned", s.captioned}, {"unchanged", s.unchanged},
                      {"skipped", s.skipped},    {"failed", s.failed},      {"seconds", s.seconds},
                      {"images_per_second", s.images_per_second}};
  auto path = dir / ".lorastudio" / "caption_runs" / (s.run + ".json");
  fs::create_directories(path.parent_path());
  core::write_file_atomic(path, j.dump(2) + "\n");
  s.log_path = path.string();
}

nlohmann::json selection_json(const SelectionOptions& o) {
  nlohmann::json j;
  for (const auto& k : selection_keys().keys())
    if (k.text) j[k.name] = k.text(o);
  return j;
}

}  // namespace

std::vector<std::string> caption_images(const std::string& dir, bool recursive) {
  data::Findings findings;
  std::vector<std::string> files = data::list_image_files(dir, findings);
  if (recursive) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec)) {
      if (!it->is_directory()) continue;
      if (it->path().filename().string().rfind('.', 0) == 0) {
        it.disable_recursion_pending();  // hidden folders: lorastudio's own state, VCS, ...
        continue;
      }
      auto sub = data::list_image_files(it->path().string(), findings);
      files.insert(files.end(), sub.begin(), sub.end());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

// The tags of a selection, in caption order.
std::vector<std::string> cr_tag_names(const Selection& selection) {
  std::vector<std::string> tags;
  for (const auto& t : selection.tags) tags.push_back(t.name);
  return tags;
}

// What a caption run killed mid-write left: temps beside the captions and in .lorastudio (backups,
// the probabilities, run logs). A dry run writes nothing, so it leaves them too.
void cr_clean_interrupted_writes(const fs::path& dir, bool recursive, bool dry_run) {
  if (dry_run) return;
  core::clean_interrupted_writes(dir, recursive);
  core::clean_interrupted_writes(dir / ".lorastudio", true);
}

bool cr_uses_captioner(const CaptionOptions& o, const std::string& name) {
  return std::find(o.captioners.begin(), o.captioners.end(), name) != o.captioners.end();
}

}  // namespace

CaptionSummary run_caption(const CaptionOptions& o) {
  const double start = core::monotonic_seconds();
  LS_CHECK(fs::is_directory(o.dir), o.dir, ": no such folder; pass the folder that holds the images");
  LS_CHECK(o.batch_size >= 1, "--batch_size must be at least 1, got ", o.batch_size);
  LS_CHECK(!o.caption_extension.empty() && o.caption_extension[0] == '.', "--caption_extension must start with '.', got '",
           o.caption_extension, "'");
  LS_CHECK(!o.captioners.empty(), "--captioner: name at least one of wd14, florence2");
  for (const auto& name : o.captioners)
    LS_CHECK(name == "wd14" || name == "florence2", "--captioner: unknown captioner '", name,
             "'; use wd14, florence2 or both (wd14,florence2)");
  const bool use_tagger = cr_uses_captioner(o, "wd14"), use_florence = cr_uses_captioner(o, "florence2");
  LS_CHECK(!use_tagger || !o.model_dir.empty(), "caption: --model_dir is required for wd14: a folder with config.json, "
           "model.safetensors and selected_tags.csv (e.g. a snapshot of SmilingWolf/wd-vit-tagger-v3)");
  LS_CHECK(!use_florence || !o.florence2_dir.empty(), "caption: --florence2_model_dir is required for florence2: a "
           "folder with config.json, pytorch_model.bin, vocab.json, merges.txt (a snapshot of microsoft/Florence-2-base)");
  LS_CHECK(!(o.save_probs && !use_tagger), "--save-probs keeps the tagger's probabilities; it needs --captioner wd14");
  LS_CHECK(!(o.frequency_tags && !use_tagger), "--frequency_tags counts the tagger's tags; it needs --captioner wd14");
  // Option errors before any model loads.
  const std::string template_text =
      !o.combine.empty() ? o.combine : use_tagger && use_florence ? "{prefix}{tags}. {caption}" : "{prefix}{caption}";
  const CaptionTemplate combine = parse_caption_template(template_text, "--combine");
  if (use_florence) {
    florence2_task_prompt(o.florence2_task);
    LS_CHECK(combine.uses("caption"), "--combine '", template_text, "' has no {caption} for florence2's text");
  }
  if (use_tagger && use_florence) LS_CHECK(combine.uses("tags"), "--combine '", template_text, "' has no {tags} for wd14's tags");
  LS_CHECK(o.max_new_tokens >= 1, "--max_new_tokens must be at least 1, got ", o.max_new_tokens);
  std::optional<SelectedTags> tags;
  std::optional<TagSelector> selector;
  if (use_tagger) {
    tags = read_selected_tags(tagger_file(o.model_dir, "selected_tags.csv").string());
    selector.emplace(*tags, o.selection);
  }

  cr_clean_interrupted_writes(o.dir, o.recursive, o.dry_run);
  CaptionSummary s;
  std::vector<Item> todo;
  for (const auto& path : caption_images(o.dir, o.recursive)) {
    ++s.images;
    Item item{path, caption_file_of(path, o.caption_extension), fs::relative(path, o.dir).generic_string()};
    if (o.existing == ExistingMode::kSkip && fs::exists(item.caption)) {
      ++s.skipped;
      continue;
    }
    todo.push_back(std::move(item));
  }
  const fs::path dir(o.dir);
  const std::string model_name = use_tagger ? fs::path(o.model_dir).lexically_normal().filename().string() : "";
  const std::string florence_name = use_florence ? fs::path(o.florence2_dir).lexically_normal().filename().string() : "";
  std::string source;
  if (use_tagger) source = "wd14 " + model_name;
  if (use_florence) source += (source.empty() ? "" : " + ") + std::string("florence2 ") + florence_name;
  Output out(dir, o.existing, o.dry_run, source);
  std::map<std::string, ImageProbs> probs;
  if (o.save_probs && !o.dry_run) probs = read_tag_probs(dir);
  TagFrequency frequency;
  double model_seconds_start = 0;
  if (!todo.empty()) {
    core::init_threads();
    const auto device = core::parse_device(o.device);
    const auto dtype = core::parse_dtype(o.dtype);
    std::optional<TaggerModel> tagger;
    std::optional<Florence2Model> florence;
    PixelSpec spec;
    if (use_tagger) {
      tagger = load_tagger_model(o.model_dir, device, dtype);
      LS_CHECK(tagger->config.num_classes == tags->size(), o.model_dir, ": config.json has ", tagger->config.num_classes,
               " classes but selected_tags.csv lists ", tags->size(), " tags; the two files come from different models");
      spec.size = static_cast<int>(tagger->config.input_size);
      spec.mean = tagger->config.mean;
      spec.std = tagger->config.std;
    }
    Florence2CaptionOptions florence_options;
    if (use_florence) {
      florence = load_florence2(o.florence2_dir, device, dtype);
      florence_options.task = o.florence2_task;
      florence_options.generate = Florence2GenerateOptions::from(florence->config.text);
      florence_options.generate.max_new_tokens = o.max_new_tokens;
      if (o.num_beams > 0) florence_options.generate.num_beams = o.num_beams;
      florence_options.strip_phrases = o.strip_phrases;
    }
    const Florence2Pixels florence_pixels = florence ? florence->pixels : Florence2Pixels{};
    Prepare prepare = [&, use_tagger, use_florence](const cv::Mat& rgb) {
      std::vector<torch::Tensor> inputs;
      if (use_tagger) inputs.push_back(tagger_pixels_from_rgb(rgb, spec));
      if (use_florence) inputs.push_back(florence2_pixels_from_rgb(rgb, florence_pixels));
      return inputs;
    };
    model_seconds_start = core::monotonic_seconds();
    core::Progress progress("captioning", static_cast<int64_t>(todo.size()), "img", o.show_progress);
    Prefetcher prefetch(todo, prepare, o.loader_threads, static_cast<size_t>(o.batch_size) * 3);
    torch::InferenceMode inference;
    std::vector<size_t> batch;
    std::vector<std::vector<torch::Tensor>> inputs(2);  // per captioner, per image
    auto flush = [&] {
      if (batch.empty()) return;
      size_t slot = 0;
      torch::Tensor p;
      if (use_tagger) {
        auto logits = tagger->net->forward(torch::cat(inputs[slot++]).to(device, dtype));
        p = torch::sigmoid(logits.to(torch::kFloat)).to(torch::kCPU).contiguous();
      }
      std::vector<std::string> sentences;
      if (use_florence) sentences = florence2_captions(*florence, torch::cat(inputs[slot++]), florence_options);
      for (size_t b = 0; b < batch.size(); ++b) {
        const Item& item = todo[batch[b]];
        std::vector<std::string> names;
        if (use_tagger) {
          const float* row = p[static_cast<int64_t>(b)].data_ptr<float>();
          Selection selection = selector->select(row, tags->size());
          if (o.frequency_tags) frequency.add(selection);
          if (o.save_probs && !o.dry_run) probs[item.rel] = {model_name, tags_to_save(*tags, row)};
          names = cr_tag_names(selection);
        }
        const std::string& prefix = o.selection.prefix;
        const std::string& separator = o.selection.caption_separator;
        if (!use_florence) {
          out.put(item, [&](const std::optional<std::string>& old) {
            return merged_caption(o.existing, old, prefix, names, separator);
          }, s);
          continue;
        }
        const std::string& sentence = sentences[b];
        out.put(item, [&](const std::optional<std::string>& old) {
          if (o.existing == ExistingMode::kOverwrite || !old)
            return render_caption_template(combine, prefix, names, sentence, separator) + "\n";
          // Append / prepend: the new text (without the trigger word, which goes to the front
          // if missing) is one part beside the old text, added unless the file already holds it.
          const std::string body = render_caption_template(combine, "", names, sentence, separator);
          const bool has_body = old->find(body) != std::string::npos;
          return merged_caption(o.existing, old, prefix, has_body ? std::vector<std::string>{} : std::vector{body},
                                separator);
        }, s);
      }
      progress.advance(static_cast<int64_t>(batch.size()));
      batch.clear();
      for (auto& list : inputs) list.clear();
    };
    for (size_t i = 0; i < todo.size(); ++i) {
      auto [tensors, error] = prefetch.take(i);
      if (!error.empty()) {
        s.failed.push_back(error);
        progress.advance();
        continue;
      }
      batch.push_back(i);
      for (size_t k = 0; k < tensors.size(); ++k) inputs[k].push_back(tensors[k]);
      if (static_cast<int>(batch.size()) == o.batch_size) flush();
    }
    flush();
  }
  if (o.save_probs && !o.dry_run && !todo.empty()) write_tag_probs(dir, probs);
  const double end = core::monotonic_seconds();
  s.seconds = end - start;
  const int ran = static_cast<int>(todo.size() - s.failed.size());
  if (ran > 0 && end > model_seconds_start) s.images_per_second = ran / (end - model_seconds_start);
  if (o.frequency_tags) s.frequencies = frequency.sorted();
  s.run = o.dry_run ? "" : out.run();
  nlohmann::json logged = {{"captioners", o.captioners}, {"recursive", o.recursive},
                           {"caption_extension", o.caption_extension}, {"batch_size", o.batch_size},
                           {"device", o.device}, {"dtype", o.dtype}, {"combine", template_text}};
  if (use_tagger) {
    logged["model_dir"] = o.model_dir;
    logged["selection"] = selection_json(o.selection);
    logged["save_probs"] = o.save_probs;
  }
  if (use_florence) {
    logged["florence2_model_dir"] = o.florence2_dir;
    logged["task"] = o.florence2_task;
    logged["max_new_tokens"] = o.max_new_tokens;
    logged["num_beams"] = o.num_beams;
    logged["strip_phrases"] = o.strip_phrases;
  }
  write_run_log(dir, "caption", logged, s);
  return s;
}

CaptionSummary run_retag(const RetagOptions& o) {
  const double start = core::monotonic_seconds();
  LS_CHECK(fs::is_directory(o.dir), o.dir, ": no such folder; pass the dataset folder captioned with --save-probs");
  const fs::path dir(o.dir);
  cr_clean_interrupted_writes(dir, true, o.dry_run);  // saved images may sit in subfolders
  auto saved = read_tag_probs(dir);
  LS_CHECK(!saved.empty(), tag_probs_path(dir).string(),
           ": no saved probabilities; run `lorastudio caption DIR --save-probs` first");
  // Below the floor the saved tags are not all there is: the result would differ from a model run.
  LS_CHECK(!o.selection.general_mcut && !o.selection.character_mcut,
           "retag: MCut needs every tag's probability and only those >= ", kSavedProbabilityFloor,
           " were saved; run `lorastudio caption` again with --general_mcut / --character_mcut");
  LS_CHECK(effective_general_threshold(o.selection) >= kSavedProbabilityFloor,
           "retag: the general threshold must be at least ", kSavedProbabilityFloor,
           " (lower probabilities were not saved); run `lorastudio caption` again for lower ones");
  LS_CHECK(effective_character_threshold(o.selection) >= kSavedProbabilityFloor,
           "retag: the character threshold must be at least ", kSavedProbabilityFloor,
           " (lower probabilities were not saved); run `lorastudio caption` again for lower ones");
  CaptionSummary s;
  Output out(dir, o.existing, o.dry_run, "retag");
  TagFrequency frequency;
  for (const auto& [rel, probs] : saved) {
    ++s.images;
    Item item{dir / rel, caption_file_of(dir / rel, o.caption_extension), rel};
    if (!fs::exists(item.image)) {
      s.failed.push_back(item.image.string() + ": image no longer exists; its saved probabilities are skipped");
      continue;
    }
    if (o.existing == ExistingMode::kSkip && fs::exists(item.caption)) {
      ++s.skipped;
      continue;
    }
    const TagSelector selector(saved_tag_list(probs), o.selection);
    Selection selection = selector.select(saved_probabilities(probs));
    if (o.frequency_tags) frequency.add(selection);
    const auto names = cr_tag_names(selection);
    out.put(item, [&](const std::optional<std::string>& old) {
      return merged_caption(o.existing, old, o.selection.prefix, names, o.selection.caption_separator);
    }, s);
  }
  s.seconds = core::monotonic_seconds() - start;
  if (o.frequency_tags) s.frequencies = frequency.sorted();
  s.run = o.dry_run ? "" : out.run();
  write_run_log(dir, "caption retag", {{"selection", selection_json(o.selection)}}, s);
  return s;
}

}  // namespace ls::caption
