// libFuzzer target for the sheet definition TOML (sheet/sheet_definition.cpp over toml++): the
// top-level keys (sheet keys, the request fields, loras), the [x] [y] [z] [page] axes with their
// kinds and values, and plan_cells. parse_sheet_toml is the in-memory entry point; the file is
// "named" in a folder that does not exist, so relative LoRA/model/VAE values and globs resolve to
// nothing on disk (absolute ones are looked up, as the command does). Any byte string must parse or
// throw ls::Error; a crash, a sanitizer report or another exception is a bug. A definition that
// passes validate() must plan: one cell per combination of axis values, each with the axis values
// it was given and finite LoRA strengths.
// toml++ is Debian's libtomlplusplus.so, as the build links it (see fuzz_dataset_toml.cpp).
// sample/request.h holds c10 types (device, dtype): hence libtorch. The sheet code also reaches
// LoRA files (an epoch from ss_epoch) and model files (prediction), whose code the sheet parser
// never calls: lld's --gc-sections drops it (GNU ld keeps the functions the coverage tables point
// at), so the target needs only these sources.
// fuzz-what: sheet TOML (axes, globs, prompts, request keys, cell plan)
// fuzz-sources: src/sheet/sheet_definition.cpp src/sample/request.cpp src/core/runtime.cpp
// fuzz-sources: src/models/model_prediction.cpp src/lora/lora_arg.cpp
// fuzz-sources: src/core/key_table.cpp src/core/nearest_name.cpp src/core/strings.cpp src/core/atomic_file.cpp
// fuzz-cflags: -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1 -ffunction-sections -fdata-sections
// fuzz-libs: -ltomlplusplus -fuse-ld=lld -Wl,--gc-sections
// fuzz-torch: yes
// fuzz-max-len: 4096
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "sheet/sheet_definition.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ls::sheet::SheetDefinition spec;
  try {
    spec = ls::sheet::parse_sheet_toml(text, "/nonexistent-fuzz-dir/sheet.toml");
    ls::sheet::validate(spec);
  } catch (const ls::Error&) {
    return 0;
  }
  // Not caught from here: a valid definition must plan without errors.
  size_t expected = 1;
  for (const ls::sheet::Axis& a : spec.axes) {
    if (a.values.empty() || a.labels.size() != a.values.size()) __builtin_trap();
    expected *= a.values.size();
  }
  const std::vector<ls::sheet::CellPlan> cells = ls::sheet::plan_cells(spec);
  if (cells.size() != expected) __builtin_trap();
  for (const ls::sheet::CellPlan& cell : cells) {
    if (cell.coords.size() != spec.axes.size()) __builtin_trap();
    for (const ls::sample::LoraSpec& l : cell.request.loras)
      if (!std::isfinite(l.strength)) __builtin_trap();
    if (!std::isfinite(cell.request.cfg_scale)) __builtin_trap();
  }
  return 0;
}
