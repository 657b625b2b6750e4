// libFuzzer target for A1111 infotext (a1111/infotext.cpp): the parameters-line lexer (re_param,
// quoted values), the prompt / negative prompt split, <lora:...> tags with "Lora hashes" and
// "Lora paths", Size as WxH and the pre-1.9 combined sampler names. Beyond "parse or ls::Error":
//  - what parses is valid UTF-8 in every text field and has finite LoRA strengths;
//  - the writer's promise, format(parse(t)) keeps every value: when lorastudio can write what it
//    read (format_infotext may refuse values it cannot write so that they read back, e.g. a LoRA
//    name with '='), the text it writes parses back to the same GenerationParams, and writing that
//    again gives the same text.
// Built and run by scripts/fuzz; sample/request.h includes c10 headers, hence libtorch.
// fuzz-what: A1111 infotext (parameters text: prompts, params line, LoRA tags and hashes)
// fuzz-sources: src/a1111/infotext.cpp src/sample/request.cpp src/core/key_table.cpp
// fuzz-sources: src/core/nearest_name.cpp src/core/strings.cpp src/core/utf8.cpp src/text/unicode.cpp
// fuzz-torch: yes
// fuzz-libs: -licuuc
// fuzz-max-len: 4096
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "a1111/infotext.h"
#include "core/error.h"
#include "core/utf8.h"

namespace {

using ls::a1111::GenerationParams;

bool it_all_utf8(const GenerationParams& p) {
  auto ok = [](const std::string& s) { return ls::core::is_valid_utf8(s); };
  bool good = ok(p.prompt) && ok(p.negative_prompt) && ok(p.sampler) && ok(p.schedule_type) && ok(p.model) &&
              ok(p.model_hash) && ok(p.model_path) && ok(p.version);
  for (const auto& l : p.loras)
    good = good && ok(l.name) && ok(l.path) && ok(l.hash) && std::isfinite(l.strength) &&
           (!l.unet_strength || std::isfinite(*l.unet_strength));
  for (const auto& [k, v] : p.extra) good = good && ok(k) && ok(v);
  return good;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  GenerationParams p;
  try {
    p = ls::a1111::parse_infotext(text, "fuzz");
  } catch (const ls::Error&) {
    return 0;
  }
  if (!it_all_utf8(p)) __builtin_trap();
  std::string written;
  try {
    written = ls::a1111::format_infotext(p);
  } catch (const ls::Error&) {
    return 0;
  }
  // Not caught: text lorastudio wrote that it cannot read back is a writer/reader disagreement.
  const GenerationParams back = ls::a1111::parse_infotext(written, "written");
  if (!(back == p)) __builtin_trap();
  if (ls::a1111::format_infotext(back) != written) __builtin_trap();
  return 0;
}
