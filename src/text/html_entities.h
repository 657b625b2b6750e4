// The HTML5 named character references (Python's `html.entities.html5`), for html_unescape.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace ls::text {

/// Value of the named reference `name` (without '&', with its ';' when written: "amp;", or
/// "amp" for the 106 legacy names HTML accepts without ';'); nullptr when it is not one.
const std::u32string* html5_entity(std::u32string_view name);

/// Calls f(name, value) for all 2231 keys (names with ';' first, then the legacy ones).
void for_each_html5_entity(const std::function<void(const std::u32string&, const std::u32string&)>& f);

}  // namespace ls::text
