// The review page: src/review/web/review.{html,css,js}, embedded into the binary at build time
// (cmake/ls_embed.cmake, as llama.cpp's scripts/xxd.cmake), assembled into one HTML document.
// The server's page reads its data from the routes; the static page carries it all inline.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace ls::review {

class ReviewStore;

/// A page template holding the markers /*@LS_STYLE@*/, /*@LS_SCRIPT@*/ and /*@LS_DATA@*/ once each,
/// with `css`, `js` and `data` put in their places (the data script-safe, as below).
std::string assemble_web_page(std::string_view html, std::string_view css, std::string_view js,
                              const nlohmann::json& data);

/// review.html with the CSS and JS inlined and `data` as its <script id="ls-data"> JSON
/// ('<', '>' and '&' escaped, so no string in it can close the script element).
std::string assemble_review_page(const nlohmann::json& data);

/// The page `lorastudio review` serves: {"mode": "server"}, everything else is fetched.
std::string review_page_html();

/// One self-contained file: the sheet, the current selections and every cell image (as base64
/// data: URIs) inline. Changes are kept in the browser's localStorage under a key derived from
/// the sheet, and a "download selections.json" button exports them.
std::string static_review_page(const ReviewStore& store);
void write_static_review_page(const ReviewStore& store, const std::filesystem::path& out);

/// RFC 4648 base64 with padding.
std::string base64_encode(std::string_view bytes);

}  // namespace ls::review
