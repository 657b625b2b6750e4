// UTF-8 well-formedness, shared by every reader of text from files (safetensors headers, PNG
// text chunks, A1111 infotext) so they agree on what "valid" means.
#pragma once

#include <string_view>

namespace ls::core {

/// RFC 3629 UTF-8: no overlong forms, no surrogates (U+D800..U+DFFF), nothing past U+10FFFF.
bool is_valid_utf8(std::string_view text);

}  // namespace ls::core
