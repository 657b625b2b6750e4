// The --lora argument syntax shared by sample, merge, debug forward and sheet definitions:
// "FILE" or "FILE:MULT". Apart from the file format (kohya_format.h) so that readers of requests
// need none of the LoRA code.
#pragma once

#include <string>
#include <utility>

namespace ls::lora {

/// Parses "FILE" or "FILE:MULT" (the --lora syntax). A ':' not followed by a number is part of
/// the path (Windows drive letters, odd file names); a strength that is not finite ("nan", "inf")
/// is an ls::Error.
std::pair<std::string, double> parse_lora_arg(const std::string& arg);

}  // namespace ls::lora
