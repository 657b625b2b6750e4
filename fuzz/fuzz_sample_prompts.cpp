// libFuzzer target for kohya's sample-prompt files (train/sample_prompts.cpp): each input is read
// three ways, as prompts.txt (one prompt a line, "# " comments, options split at " --": --n --w --h
// --d --l --s --ss and the request names), prompts.json (a list of tables) and prompts.toml ([prompt]
// shared keys over [[prompt.subset]] tables, through toml++'s JSON form), with kohya's sampler
// names. parse_sample_prompts is the in-memory entry point; nothing touches the disk. Any bytes must
// give requests or ls::Error; what it gives must be what the trainer can sample, since a request
// the sampler refuses fails the run at its first sample epoch, hours in:
//  - every request passes sample::validate_request (steps 1..1000, sizes multiples of 64 from 64,
//    finite CFG, a seed >= 0, a sampler and schedule parse_sampler knows);
//  - one request per line that is not blank or a '#' comment (.txt), per list entry (.json), per
//    [[prompt.subset]] table (.toml);
//  - in .txt, prompts and negative prompts are trimmed and hold no " --" (it splits the options);
//  - a .json / .toml file's prompts are valid UTF-8 (both readers refuse anything else).
// toml++ is Debian's libtomlplusplus.so (see fuzz_dataset_toml.cpp). validate_request lives in
// sample/pipeline.cpp, whose model code the reader never reaches: lld's --gc-sections drops it (see
// fuzz_sheet_toml.cpp); request.h holds c10 types, hence libtorch.
// fuzz-what: sample-prompt files (.txt --n/--w/--h/--d/--l/--s/--ss lines, .json, .toml)
// fuzz-sources: src/train/sample_prompts.cpp src/sample/request.cpp src/sample/pipeline.cpp
// fuzz-sources: src/sample/sampler_names.cpp src/core/key_table.cpp src/core/nearest_name.cpp
// fuzz-sources: src/core/strings.cpp src/core/atomic_file.cpp src/core/utf8.cpp
// fuzz-cflags: -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1 -ffunction-sections -fdata-sections
// fuzz-cflags: -isystem /usr/include/opencv4
// fuzz-libs: -ltomlplusplus -fuse-ld=lld -Wl,--gc-sections
// fuzz-torch: yes
// fuzz-max-len: 4096
// fuzz-share: 3
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "core/error.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "sample/pipeline.h"
#include "train/sample_prompts.h"

namespace {

constexpr uint64_t kSpTrainSeed = 0xFFFFFFFEu;  // + index wraps past 2^32: the seeds stay 32-bit

// Requests the .txt reader must make: lines not blank and not '#' comments.
size_t sp_text_lines(std::string_view text) {
  size_t n = 0, start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string line = ls::core::trim(text.substr(start, end - start));
    if (!line.empty() && line[0] != '#') ++n;
    start = end + 1;
  }
  return n;
}

// Entries of the .json list or the .toml [[prompt.subset]] array; -1 when unknown.
long sp_list_size(std::string_view text, bool json) {
  try {
    if (json) {
      const nlohmann::json j = nlohmann::json::parse(text.begin(), text.end());
      return j.is_array() ? static_cast<long>(j.size()) : -1;
    }
    const toml::table t = toml::parse(text);
    const toml::array* a = t["prompt"]["subset"].as_array();
    return a ? static_cast<long>(a->size()) : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

bool sp_trimmed(const std::string& s) { return ls::core::trim(s) == s; }

void sp_check(const std::vector<ls::sample::ImageRequest>& requests, std::string_view text, const std::string& ext) {
  for (const ls::sample::ImageRequest& r : requests) {
    try {
      ls::sample::validate_request(r);
    } catch (const ls::Error&) {
      __builtin_trap();
    }
    if (r.width < 64 || r.width % 64 || r.height < 64 || r.height % 64 || r.seed < 0 || !std::isfinite(r.cfg_scale))
      __builtin_trap();
    if (ext == ".txt") {
      for (const std::string* s : {&r.prompt, &r.negative_prompt})
        if (!sp_trimmed(*s) || s->find(" --") != std::string::npos) __builtin_trap();
    } else if (!ls::core::is_valid_utf8(r.prompt) || !ls::core::is_valid_utf8(r.negative_prompt)) {
      __builtin_trap();
    }
  }
  if (ext == ".txt") {
    if (requests.size() != sp_text_lines(text)) __builtin_trap();
  } else if (sp_list_size(text, ext == ".json") != static_cast<long>(requests.size())) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const std::string ext : {".txt", ".json", ".toml"}) {
    std::vector<ls::sample::ImageRequest> requests;
    try {
      requests = ls::train::parse_sample_prompts(text, "/fuzz/prompts" + ext, "euler_a", kSpTrainSeed);
    } catch (const ls::Error&) {
      continue;
    }
    sp_check(requests, text, ext);
  }
  return 0;
}
