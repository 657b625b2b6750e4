// HTML character references, decoded the two ways OpenAI CLIP's cleaning decodes them:
// Python's `html.unescape` (CPython Lib/html/__init__.py) and ftfy's stricter
// `ftfy.fixes.unescape_html` (rspeer/python-ftfy ftfy/fixes.py + chardata.py, 6.3.1).
#pragma once

#include <string>
#include <string_view>

namespace ls::text {

/// Python `html.unescape`: `&name;` and the legacy names without ';' (longest known prefix wins:
/// "&ampx" -> "&x"), `&#123;` / `&#x7b;` with or without ';', HTML5's rules for invalid numbers
/// (&#0; and surrogates -> U+FFFD, &#128;..&#159; -> windows-1252, noncharacters and most
/// controls -> removed).
std::u32string html_unescape(std::u32string_view text);

/// `ftfy.fixes.unescape_html`: only references closed by ';' with 1..24 ASCII letters/digits;
/// numeric ones via html_unescape; also all-caps forms of lowercase names ("&EACUTE;" -> "É").
std::u32string ftfy_unescape_html(std::u32string_view text);

}  // namespace ls::text
