// What Florence-2's processor does around the model (Microsoft's processing_florence2.py and
// the native transformers port): the task token expanded to its prompt, the image resized with
// Pillow's bicubic straight to 768 x 768 (no padding: the aspect ratio is not kept) and
// normalised with ImageNet's mean and std, and the generated text cleaned of the special tokens.
// lorastudio adds the removal of boilerplate openings ("The image shows") captioners ask for.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

namespace ls::caption {

/// preprocessor_config.json's values (CLIPImageProcessor), defaults the hub's.
struct Florence2Pixels {
  int width = 768, height = 768;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
};

/// DIR/preprocessor_config.json when it exists, else the defaults; refuses settings that would
/// change the computation and are not implemented (another resample filter, center crop).
Florence2Pixels read_florence2_pixels(const std::filesystem::path& dir);

/// 8-bit RGB (alpha already over white, as transformers' convert_to_rgb does) -> float32 CPU
/// [1, 3, height, width] in R, G, B order.
at::Tensor florence2_pixels_from_rgb(const cv::Mat& rgb, const Florence2Pixels& spec);
at::Tensor florence2_pixels_from_file(const std::string& path, const Florence2Pixels& spec);

/// The captioning and OCR tasks: "<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>",
/// "<OCR>", "<OCR_WITH_REGION>".
const std::vector<std::string>& florence2_tasks();
/// The prompt a task token stands for ("<CAPTION>" -> "What does the image describe?"); any
/// other text is an error naming the tasks.
std::string florence2_task_prompt(const std::string& task);

/// Decoded ids (special tokens kept) -> the caption: "<s>", "</s>" and "<pad>" removed, blanks
/// around trimmed (the processor's pure-text post-processing; pads only appear in a batch).
std::string florence2_clean_text(const std::string& decoded);

/// Openings that describe the picture rather than its subject, removed by --strip_phrases.
const std::vector<std::string>& florence2_default_strip_phrases();
/// Removes the first phrase of `phrases` (case-insensitive, whole words) that opens the caption,
/// with the comma / colon / "that" after it, and capitalises what is left; unchanged if none
/// opens it or nothing would be left.
std::string strip_caption_phrases(const std::string& caption, const std::vector<std::string>& phrases);

}  // namespace ls::caption
