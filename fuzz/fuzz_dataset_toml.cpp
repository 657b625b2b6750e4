// libFuzzer target for the kohya dataset TOML layer (data/dataset_config.cpp over toml++):
// [general] / [[datasets]] / [[datasets.subsets]], the nearest-level-wins key tables, refused kohya
// keys, bucket and caption validation. parse_dataset_toml is the in-memory entry point
// (load_dataset_toml only reads the file) and looks at no folder, so nothing touches the disk.
// Any byte string must parse or throw ls::Error; a toml++ or std exception leaking, a crash or a
// sanitizer report is a bug. What a parsed config promises the loader is checked too: datasets
// with subsets, every image_dir resolved against the base folder, repeats and caption options
// valid, bucket options a BucketSelector accepts.
// toml++ is Debian's libtomlplusplus.so, as the build links it, not compiled in: its 3.3 headers
// built here with sanitizers stop on known upstream faults (a false assertion on "[[[a]]]",
// marzer/tomlplusplus#301; __builtin_unreachable reached for some non-ASCII characters, #295 and
// #190) that the release library answers with a parse error; the regression tests hold those inputs.
// fuzz-what: dataset TOML ([general], [[datasets]], [[datasets.subsets]])
// fuzz-sources: src/data/dataset_config.cpp src/data/buckets.cpp src/data/captions.cpp
// fuzz-sources: src/core/key_table.cpp src/core/toml_value.cpp src/core/nearest_name.cpp src/core/strings.cpp
// fuzz-sources: src/core/atomic_file.cpp src/text/unicode.cpp
// fuzz-cflags: -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1
// fuzz-libs: -ltomlplusplus -licuuc
// fuzz-max-len: 4096
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "data/buckets.h"
#include "data/dataset_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ls::data::DataConfig config;
  try {
    config = ls::data::parse_dataset_toml(text, "fuzz.toml", "/fuzz-base");
  } catch (const ls::Error&) {
    return 0;
  }
  // Not caught: these hold for every config the parser accepts.
  if (config.datasets.empty()) __builtin_trap();
  for (const ls::data::DatasetConfig& d : config.datasets) {
    if (d.subsets.empty() || d.batch_size < 1) __builtin_trap();
    ls::data::BucketSelector check(d.buckets);
    if (check.options().resolution.width < 64 || check.options().resolution.height < 64) __builtin_trap();
    for (const ls::data::SubsetConfig& s : d.subsets) {
      if (s.image_dir.empty() || s.image_dir[0] != '/' || s.num_repeats < 1 || s.num_repeats > 1'000'000)
        __builtin_trap();
      if (s.caption_extension.empty() || s.caption_extension[0] != '.') __builtin_trap();
      if (!s.conditioning_data_dir.empty() && s.conditioning_data_dir[0] != '/') __builtin_trap();
      ls::data::validate_caption_options(s.caption);
    }
  }
  return 0;
}
