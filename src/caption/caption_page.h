// The caption editor's page: src/caption/web/captions.{html,css,js}, embedded at build time as the
// review page is (cmake/ls_embed.cmake) and assembled into one document; it fetches everything
// else from the server's API.
#pragma once

#include <filesystem>
#include <string>

namespace ls::caption {

/// The embedded page.
std::string captions_page_html();
/// The same assembled from captions.{html,css,js} in `web_dir`, read now (`captions --web_dir`,
/// for working on the page without rebuilding). ls::Error when a file is missing.
std::string captions_page_html(const std::filesystem::path& web_dir);

}  // namespace ls::caption
