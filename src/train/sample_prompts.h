// kohya's sample prompts for images during training (kohya-ss/sd-scripts library/train_util.py
// load_prompts / line_to_prompt_dict / sample_images_common): a .txt file, one prompt per line with
// options `--n negative --w width --h height --d seed --l cfg scale --s steps --ss sampler`, or a
// .json/.toml list of tables with kohya's keys; kohya's sampler names mapped to A1111's.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sample/request.h"

namespace ls::train {

/// The requests of a prompt file. Defaults as kohya's: 512x512, 30 steps, CFG 7.5, the
/// `sample_sampler` key; a prompt without --d gets seed (train seed + index) so that sample images
/// are the same on every run. Sizes are rounded down to a multiple of 64 (at least 64). Every request
/// then passes sample::validate_request (steps 1..1000, a sampler and schedule it knows), so a bad
/// prompt fails before training, not at the first sample epoch. Errors name file:line and the option.
std::vector<sample::ImageRequest> read_sample_prompts(const std::string& path, const std::string& default_sampler,
                                                      uint64_t train_seed);
/// read_sample_prompts on a file's text already in memory: `path` picks the form by its extension
/// and names the file in errors; nothing is read from disk.
std::vector<sample::ImageRequest> parse_sample_prompts(std::string_view text, const std::string& path,
                                                       const std::string& default_sampler, uint64_t train_seed);

/// kohya's --sample_sampler name ("euler_a", "k_dpm_2", "dpmsolver++", ...) as lorastudio's
/// (A1111) sampler name; ls::Error for the ones without a k-diffusion counterpart (pndm, dpmsingle).
std::string sampler_from_kohya(const std::string& name, const std::string& where);

}  // namespace ls::train
