// The review server's routes on the local server (review/local_server.h: 127.0.0.1 only, Host
// check, JSON content type on writes).
#include "review/review_server.h"

#include <system_error>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "review/local_server.h"
#include "review/review_page.h"
#include "review/review_requests.h"
#include "review/review_store.h"

namespace ls::review {

namespace {

ServerLimits review_server_limits() {
  ServerLimits limits;
  limits.max_body = 1 << 20;  // a note, not an upload
  return limits;
}

const char* review_image_mime(const std::filesystem::path& file) {
  return file.extension() == ".png" ? "image/png" : "application/octet-stream";
}

}  // namespace

ReviewServer::ReviewServer(const std::filesystem::path& sheet_dir)
    : store_(std::make_unique<ReviewStore>(sheet_dir)),
      server_(std::make_unique<LocalServer>("review", review_server_limits())),
      page_(review_page_html()) {
  add_routes();
}

ReviewServer::~ReviewServer() { stop(); }

int ReviewServer::bind(int port) { return server_->bind(port); }
void ReviewServer::serve() { server_->serve(); }
void ReviewServer::start() { server_->start(); }
void ReviewServer::stop() { server_->stop(); }
int ReviewServer::port() const { return server_->port(); }
std::string ReviewServer::url() const { return server_->url(); }

void ReviewServer::add_routes() {
  auto& http = *server_;
  http.route("GET", "/", [this](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(page_, "text/html; charset=utf-8");
  });
  http.route("GET", "/sheet.json", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    store_->refresh_sheet();
    send_json(res, store_->sheet().doc);
  });
  http.route("GET", "/api/selections", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    send_json(res, selections_to_json(store_->selections()));
  });
  http.route("GET", "/api/summary", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    store_->refresh_sheet();
    send_json(res, summary_to_json(store_->summary()));
  });
  auto put = [this](const httplib::Request& req, httplib::Response& res) { put_selection(req, res); };
  http.route("PUT", R"(/api/selections/([^/]+))", put);
  http.route("POST", R"(/api/selections/([^/]+))", put);
  http.route("GET", R"(/files/.*)", [this](const httplib::Request& req, httplib::Response& res) { send_file(req, res); });
}

// PUT/POST /api/selections/<id>: either field may be left out to keep it.
void ReviewServer::put_selection(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  nlohmann::json body;
  if (!json_object_body(req, res, body)) return;
  SelectionUpdate update;
  if (const std::string refused = parse_selection_update(body, update); !refused.empty()) {
    return send_error(res, 400, "cell " + id + ": " + refused);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (!store_->sheet().find(id) && (!store_->refresh_sheet() || !store_->sheet().find(id))) {
    return send_error(res, 404, "no cell with id '" + id + "' in this sheet");
  }
  auto it = store_->selections().find(id);
  const Selection next = apply_selection_update(it == store_->selections().end() ? Selection{} : it->second, update);
  store_->set(id, next.state, next.note);
  send_json(res, selections_to_json(store_->selections()));
}

void ReviewServer::send_file(const httplib::Request& req, httplib::Response& res) {
  // Checked on the raw target: httplib has already turned %2e%2e%2f into ../ in req.path.
  const FileRequest file = resolve_file_request(store_->dir(), raw_target_path(req));
  if (file.status != 0) return send_error(res, file.status, file.message);
  res.set_header("Cache-Control", "no-cache");
  res.set_content(core::read_file(file.file), review_image_mime(file.file));
}

}  // namespace ls::review
