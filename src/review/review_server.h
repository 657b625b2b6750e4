// The review server: cpp-httplib on 127.0.0.1 only, serving the review page, sheet.json, the
// cell images and the selections API of one sheet folder (docs/sheet-format.md).
// Routes:
//   GET  /                          the page (review.html with its CSS and JS inlined)
//   GET  /sheet.json                the manifest as loaded (re-read when the file changes)
//   GET  /api/selections            selections.json's document
//   PUT|POST /api/selections/<id>   {"state": "picked|rejected|none", "note": "..."} (either may be
//                                   left out to keep it); saved atomically; answers the new document
//   GET  /api/summary               picks per LoRA file / strength / epoch / other axis value
//   GET  /files/<relative path>     a .png of the sheet folder (cells/*.png, grid-*.png)
// Errors are JSON {"error": "..."} with 400 (malformed), 403 (outside the folder, wrong Host),
// 404 (unknown cell, missing file, no such route), 405 (another method's route), 411/413/415
// (a body without one plain Content-Length, over 1 MiB, not application/json or compressed).
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "review/review_requests.h"

namespace httplib {
struct Request;
struct Response;
}

namespace ls::review {

class ReviewStore;
class LocalServer;

class ReviewServer {
 public:
  /// Loads the sheet folder (ls::Error when sheet.json or selections.json is broken).
  explicit ReviewServer(const std::filesystem::path& sheet_dir);
  ~ReviewServer();  // stops and joins a start()ed server
  ReviewServer(const ReviewServer&) = delete;
  ReviewServer& operator=(const ReviewServer&) = delete;

  /// Binds 127.0.0.1:port (0 = any free port) and returns the port; ls::Error when it is taken.
  int bind(int port = 0);
  /// Serves until stop(); bind() first.
  void serve();
  /// serve() on a background thread; returns once the server accepts connections.
  void start();
  /// Makes serve() return; safe from any thread, idempotent.
  void stop();

  int port() const;
  /// "http://127.0.0.1:PORT/"
  std::string url() const;

 private:
  void add_routes();
  void put_selection(const httplib::Request& req, httplib::Response& res);
  void send_file(const httplib::Request& req, httplib::Response& res);

  std::unique_ptr<ReviewStore> store_;
  std::unique_ptr<LocalServer> server_;
  std::string page_;
  std::mutex mutex_;  // httplib answers on a thread pool; the store is not thread-safe
};

}  // namespace ls::review
