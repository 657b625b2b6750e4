#include "caption/caption_page.h"

#include <string_view>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "review/review_page.h"
#if __has_include("caption/caption_web.h")
#include "caption/caption_web.h"
#else
#error "caption/caption_web.h is generated: call ls_embed() for lorastudio_lib in CMakeLists.txt (cmake/ls_embed.cmake)"
#endif

namespace ls::caption {

namespace {

std::string_view caption_web_text(const unsigned char* bytes, size_t size) {
  return {reinterpret_cast<const char*>(bytes), size};
}

const nlohmann::json& server_mode() {
  static const nlohmann::json data = {{"mode", "server"}};
  return data;
}

}  // namespace

std::string captions_page_html() {
  return review::assemble_web_page(caption_web_text(web::captions_html, web::captions_html_size),
                                   caption_web_text(web::captions_css, web::captions_css_size),
                                   caption_web_text(web::captions_js, web::captions_js_size), server_mode());
}

std::string captions_page_html(const std::filesystem::path& web_dir) {
  return review::assemble_web_page(core::read_file(web_dir / "captions.html"), core::read_file(web_dir / "captions.css"),
                                   core::read_file(web_dir / "captions.js"), server_mode());
}

}  // namespace ls::caption
