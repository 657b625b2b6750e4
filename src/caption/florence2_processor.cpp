#include "caption/florence2_processor.h"

#include <cctype>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "caption/pillow_resize.h"
#include "core/error.h"
#include "core/atomic_file.h"
#include "core/strings.h"
#include "io/image.h"

namespace ls::caption {

namespace fs = std::filesystem;

namespace {

struct F2Task {
  const char* token;
  const char* prompt;
};

// processing_florence2.py's task_prompts_without_inputs (the tasks that take no text input).
const F2Task kF2Tasks[] = {
    {"<CAPTION>", "What does the image describe?"},
    {"<DETAILED_CAPTION>", "Describe in detail what is shown in the image."},
    {"<MORE_DETAILED_CAPTION>", "Describe with a paragraph what is shown in the image."},
    {"<OCR>", "What is the text in the image?"},
    {"<OCR_WITH_REGION>", "What is the text in the image, with regions?"},
};

void f2p_replace_all(std::string& s, const std::string& from) {
  for (size_t at; (at = s.find(from)) != std::string::npos;) s.erase(at, from.size());
}

bool f2p_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '\''; }

}  // namespace

Florence2Pixels read_florence2_pixels(const fs::path& dir) {
  Florence2Pixels spec;
  // Microsoft's snapshot has preprocessor_config.json; transformers 5 saves the image processor's
  // settings as "image_processor" inside processor_config.json.
  fs::path path = dir / "preprocessor_config.json";
  bool nested = false;
  if (!fs::exists(path)) {
    path = dir / "processor_config.json";
    nested = true;
    if (!fs::exists(path)) return spec;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(core::read_file(path.string()));
  } catch (const nlohmann::json::exception& e) {
    LS_FAIL(path.string(), ": not valid JSON (", e.what(), "); restore the file from the model's hub snapshot");
  }
  if (nested) {
    if (!j.contains("image_processor") || !j["image_processor"].is_object()) return spec;
    j = j["image_processor"];
  }
  try {
    if (j.contains("size")) {
      const auto& size = j["size"];
      if (size.is_object() && size.contains("height") && size.contains("width")) {
        spec.height = size["height"].get<int>();
        spec.width = size["width"].get<int>();
      } else {
        LS_FAIL(path.string(), ": \"size\" must be {\"height\": H, \"width\": W} as Florence-2's is");
      }
    }
    if (j.contains("image_mean"))
      for (int c = 0; c < 3; ++c) spec.mean[c] = j["image_mean"].at(c).get<float>();
    if (j.contains("image_std"))
      for (int c = 0; c < 3; ++c) spec.std[c] = j["image_std"].at(c).get<float>();
    // PIL's BICUBIC is 3; anything else would be a different resize.
    if (j.contains("resample") && !j["resample"].is_null())
      LS_CHECK(j["resample"].get<int>() == 3, path.string(), ": resample ", j["resample"].dump(),
               " is not bicubic (3), the only filter Florence-2 uses");
    if (j.value("do_center_crop", false))
      LS_FAIL(path.string(), ": do_center_crop is true; Florence-2 resizes without cropping (set it to false)");
    if (j.contains("rescale_factor"))
      LS_CHECK(std::abs(j["rescale_factor"].get<double>() - 1.0 / 255.0) < 1e-9, path.string(),
               ": rescale_factor must be 1/255");
  } catch (const nlohmann::json::exception& e) {
    LS_FAIL(path.string(), ": unexpected value (", e.what(), "); restore the file from the model's hub snapshot");
  }
  LS_CHECK(spec.width > 0 && spec.height > 0 && spec.width % 32 == 0 && spec.height % 32 == 0, path.string(),
           ": size ", spec.width, "x", spec.height, " must be positive multiples of 32 (the vision tower's stride)");
  for (int c = 0; c < 3; ++c) LS_CHECK(spec.std[c] != 0.0f, path.string(), ": image_std[", c, "] is 0");
  return spec;
}

at::Tensor florence2_pixels_from_rgb(const cv::Mat& rgb, const Florence2Pixels& spec) {
  LS_CHECK(rgb.type() == CV_8UC3 && !rgb.empty(), "florence2 input: expected a non-empty 8-bit RGB image");
  cv::Mat resized = rgb;
  if (rgb.cols != spec.width || rgb.rows != spec.height) resized = pillow_resize_bicubic(rgb, spec.width, spec.height);
  // transformers rescales by 1/255 in float64, casts to float32, then normalises in float32; one
  // table per channel covers all values.
  float table[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v)
      table[c][v] = (static_cast<float>(v * (1.0 / 255.0)) - spec.mean[c]) / spec.std[c];
  const int64_t plane = int64_t{spec.width} * spec.height;
  at::Tensor out = torch::empty({1, 3, spec.height, spec.width}, torch::kFloat32);
  float* data = out.data_ptr<float>();
  for (int y = 0; y < spec.height; ++y) {
    const uint8_t* src = resized.ptr<uint8_t>(y);
    for (int x = 0; x < spec.width; ++x, src += 3) {
      const int64_t at = int64_t{y} * spec.width + x;
      for (int c = 0; c < 3; ++c) data[c * plane + at] = table[c][src[c]];
    }
  }
  return out;
}

at::Tensor florence2_pixels_from_file(const std::string& path, const Florence2Pixels& spec) {
  return florence2_pixels_from_rgb(io::read_image_rgb(path), spec);
}

const std::vector<std::string>& florence2_tasks() {
  static const std::vector<std::string> tasks = [] {
    std::vector<std::string> t;
    for (const auto& task : kF2Tasks) t.push_back(task.token);
    return t;
  }();
  return tasks;
}

std::string florence2_task_prompt(const std::string& task) {
  for (const auto& t : kF2Tasks)
    if (task == t.token) return t.prompt;
  std::string names;
  for (const auto& t : kF2Tasks) names += std::string(names.empty() ? "" : ", ") + t.token;
  LS_FAIL("florence2: unknown task '", task, "'; the captioning tasks are ", names);
}

std::string florence2_clean_text(const std::string& decoded) {
  std::string s = decoded;
  for (const char* special : {"<s>", "</s>", "<pad>"}) f2p_replace_all(s, special);
  return core::trim(s);
}

const std::vector<std::string>& florence2_default_strip_phrases() {
  static const std::vector<std::string> phrases = {
      "The image shows",     "The image depicts",     "The image features", "The image is",
      "The image captures",  "The image contains",    "This image shows",   "This image depicts",
      "This image is",       "The picture shows",     "The photo shows",    "The photograph shows",
      "In this image,",      "In this image",         "In the image,",      "In the image",
      "This is an image of", "This is a picture of",  "An image of",        "A picture of",
  };
  return phrases;
}

std::string strip_caption_phrases(const std::string& caption, const std::vector<std::string>& phrases) {
  const std::string lower = core::ascii_lower(caption);
  for (const auto& phrase : phrases) {
    const std::string p = core::ascii_lower(core::trim(phrase));
    if (p.empty() || lower.compare(0, p.size(), p) != 0) continue;
    size_t at = p.size();
    // Whole words: "The image is" must not cut "The image isolates".
    if (at < caption.size() && f2p_word_char(caption[at]) && f2p_word_char(p.back())) continue;
    while (at < caption.size() && (caption[at] == ' ' || caption[at] == ',' || caption[at] == ':')) ++at;
    if (lower.compare(at, 5, "that ") == 0) at += 5;
    std::string rest = core::trim(caption.substr(at));
    if (rest.empty()) return caption;
    rest[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(rest[0])));
    return rest;
  }
  return caption;
}

}  // namespace ls::caption
