// `lorastudio captions DIR|DATASET.toml`: the caption editor's server (docs/captions.md). The
// local server of the review page (127.0.0.1 only, Host check, JSON errors) with the caption
// store of each dataset folder behind a JSON API, the images and thumbnails of those folders
// and nothing else, and the dataset doctor's verdict on every image.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "caption/caption_requests.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace ls::review {
class LocalServer;
}

namespace ls::caption {

struct CaptionServerOptions {
  std::string source;                      // a folder of images, or a kohya dataset TOML
  std::string caption_extension = ".txt";  // a folder's; a TOML's subsets name their own
  bool recursive = true;                   // a folder: its subfolders too (kohya's 10_name/ ...)
  std::string tokenizer;                   // CLIP vocabulary for token counts; "" = none
  std::string web_dir;  // development: captions.{html,css,js} read from here on every page load
  bool show_progress = true;
};

class CaptionServer {
 public:
  /// Scans the dataset (ls::Error for a missing folder, a broken TOML or tokenizer).
  explicit CaptionServer(const CaptionServerOptions& options);
  ~CaptionServer();
  CaptionServer(const CaptionServer&) = delete;
  CaptionServer& operator=(const CaptionServer&) = delete;

  int bind(int port = 0);
  void serve();
  void start();
  void stop();
  int port() const;
  std::string url() const;

  /// Images over every folder.
  size_t image_count() const;

 private:
  struct State;
  void add_routes();
  void list_images(httplib::Response& res);
  void list_tags(httplib::Response& res);
  void count_tokens(const httplib::Request& req, httplib::Response& res);
  void put_caption(const httplib::Request& req, httplib::Response& res);
  void bulk(const httplib::Request& req, httplib::Response& res);
  void history(httplib::Response& res);
  void undo(const httplib::Request& req, httplib::Response& res);
  void send_image(const httplib::Request& req, httplib::Response& res, bool thumbnail);

  std::unique_ptr<State> state_;
  std::unique_ptr<review::LocalServer> server_;
};

}  // namespace ls::caption
