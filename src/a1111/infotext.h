// A1111's generation-parameters text ("infotext", the PNG `parameters` chunk): the layout of
// AUTOMATIC1111/stable-diffusion-webui modules/processing.py create_infotext and the parser of
// modules/infotext_utils.py parse_generation_parameters (quote/unquote, re_param), with LoRAs as
// extra-network tags <lora:name:te[:unet]> (modules/extra_networks.py parse_prompt,
// extensions-builtin/Lora/extra_networks_lora.py) and "Lora hashes" as A1111 writes them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/version.h"
#include "sample/request.h"

namespace ls::a1111 {

/// What "Version" says when lorastudio writes the text.
inline constexpr const char* kInfotextVersion = core::kProducer;

/// One LoRA of a generation: the tag <lora:name:strength> (or <lora:name:strength:unet_strength>)
/// in the prompt, its A1111 short hash ("Lora hashes") and, lorastudio only, its file ("Lora paths").
struct InfotextLora {
  std::string name;  // as in the tag (A1111: file name without extension, or its alias)
  std::string path;  // "" = not written
  std::string hash;  // 12 hex (A1111 addnet hash); "" = not written
  double strength = 1.0;                // A1111 te multiplier, and the UNet's unless unet_strength is set
  std::optional<double> unet_strength;  // A1111's third positional / unet= argument
};
bool operator==(const InfotextLora& a, const InfotextLora& b);

/// Everything lorastudio needs to reproduce an image: the request's settings (sample/request.h;
/// `prompt` without the <lora:...> tags of `loras`, schedule_type "" = not written, Automatic)
/// and what A1111 writes about the files. Device and dtype are not stored (they are the
/// machine's, not the image's); "Clip skip" does not apply to SDXL and lands in `extra`.
struct GenerationParams : sample::ImageSettings {
  std::string model;       // checkpoint file name without extension; "" = not written
  std::string model_hash;  // A1111 "Model hash": first 10 hex of the file's SHA-256; "" = not written
  std::string model_path;  // lorastudio "Model path"; "" = not written
  std::vector<InfotextLora> loras;
  std::string version = kInfotextVersion;  // "" = not written
  /// Other keys, kept as text ("Clip skip", "VAE hash", "Hires upscale", ...). Written after
  /// "Model" in key order; a key must not be one of the fields above.
  std::map<std::string, std::string> extra;
};
bool operator==(const GenerationParams& a, const GenerationParams& b);

/// The text A1111 would write: the prompt with " <lora:name:w>" appended for each LoRA not already
/// tagged in it, "Negative prompt: ..." when not empty, then "Steps: 20, Sampler: DPM++ 2M,
/// Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 1024x1024, Model hash: 31e35c80fc,
/// Model: sd_xl_base_1.0, <extra...>, Lora hashes: "a: 0123456789ab", Model path: ...,
/// Lora paths: "a: /loras/a.safetensors", Version: lorastudio 0.1.0". Values holding , : " a
/// newline or edge spaces are JSON-quoted (A1111 quote()); numbers use the shortest text that
/// reads back to the same double (7 -> "7", 7.5 -> "7.5"). In "Lora paths" '%' and ',' are
/// written %25 and %2C so any path reads back. Throws ls::Error for values that cannot be read
/// back: a LoRA name with ':' '<' '>' or a control character, duplicate LoRA names, a prompt line
/// starting "Negative prompt:", non-finite numbers, an extra key that is a field or is not an
/// A1111 key (\w[\w -/]+), a tag in the prompt whose strength disagrees with `loras`, bad UTF-8.
std::string format_infotext(const GenerationParams& params);

/// The inverse, following parse_generation_parameters: lines are stripped; the last line holds the
/// parameters; <lora:...>/<lyco:...> tags leave the prompt (trimmed) and become `loras`, matched
/// with "Lora hashes" and "Lora paths" by name; an old combined sampler ("DPM++ 2M Karras") without
/// "Schedule type" is split; other keys go to `extra` unquoted. format(parse(t)) keeps every
/// value; parse(format(p)) == p when the prompts have no edge whitespace on any line (A1111 strips
/// it) and no tags. Throws ls::Error "<name>: ..." when the text has no parameters line, lacks
/// Steps/Sampler/CFG scale/Seed/Size, has a malformed number or size, or a LoRA tag lorastudio
/// cannot apply (dyn=, no name, bad strength, one name twice).
GenerationParams parse_infotext(const std::string& text, const std::string& name_for_errors);

/// A1111's quote(): JSON string (ensure_ascii=False) when the value needs it, else the value.
std::string infotext_quote(const std::string& value);
/// Shortest decimal that reads back to the same double (std::to_chars): 7 -> "7", 1e-05 -> "1e-05".
std::string format_number(double value);

}  // namespace ls::a1111
