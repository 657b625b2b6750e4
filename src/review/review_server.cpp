// The review server's routes on the local server (review/local_server.h: 127.0.0.1 only, Host
// check, JSON content type on writes).
#include "review/review_server.h"

#include <system_error>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/path_within.h"
#include "review/local_server.h"
#include "review/review_page.h"
#include "review/review_store.h"

namespace ls::review {

namespace {

const char* review_image_mime(const std::filesystem::path& file) {
  return file.extension() == ".png" ? "image/png" : "application/octet-stream";
}

}  // namespace

int check_file_request(const std::filesystem::path& sheet_dir, const std::string& raw_relative) {
  if (!is_safe_relative_path(raw_relative)) return 400;
  std::filesystem::path relative(raw_relative);
  if (relative.extension() != ".png") return 403;  // never sheet.json, selections.json or anything else
  std::error_code ec;
  auto root = std::filesystem::canonical(sheet_dir, ec);
  if (ec) return 404;
  auto target = std::filesystem::weakly_canonical(root / relative, ec);
  if (ec) return 404;
  if (!core::path_within(root, target) || target == root) return 403;  // a symlink leading out
  if (!std::filesystem::is_regular_file(target, ec)) return 404;
  return 0;
}

ReviewServer::ReviewServer(const std::filesystem::path& sheet_dir)
    : store_(std::make_unique<ReviewStore>(sheet_dir)),
      server_(std::make_unique<LocalServer>("review", 1 << 20)),  // a note, not an upload
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
  auto& http = server_->http();
  http.Get("/", [this](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(page_, "text/html; charset=utf-8");
  });
  http.Get("/sheet.json", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    store_->refresh_sheet();
    send_json(res, store_->sheet().doc);
  });
  http.Get("/api/selections", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    send_json(res, selections_to_json(store_->selections()));
  });
  http.Get("/api/summary", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    store_->refresh_sheet();
    send_json(res, summary_to_json(store_->summary()));
  });
  auto put = [this](const httplib::Request& req, httplib::Response& res) { put_selection(req, res); };
  http.Put(R"(/api/selections/([^/]+))", put);
  http.Post(R"(/api/selections/([^/]+))", put);
  http.Get(R"(/files/.*)", [this](const httplib::Request& req, httplib::Response& res) { send_file(req, res); });
}

// PUT/POST /api/selections/<id>: either field may be left out to keep it.
void ReviewServer::put_selection(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  nlohmann::json body;
  if (!json_object_body(req, res, body)) return;
  for (const auto& [key, value] : body.items()) {
    if (key != "state" && key != "note") return send_error(res, 400, "unknown key '" + key + "' (state, note)");
    if (!value.is_string()) return send_error(res, 400, key + " must be a string");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (!store_->sheet().find(id) && (!store_->refresh_sheet() || !store_->sheet().find(id))) {
    return send_error(res, 404, "no cell with id '" + id + "' in this sheet");
  }
  auto it = store_->selections().find(id);
  Selection current = it == store_->selections().end() ? Selection{} : it->second;
  CellState state = current.state;
  if (body.contains("state")) {
    try {
      state = parse_state(body["state"].get<std::string>(), "cell " + id);
    } catch (const Error& e) {
      return send_error(res, 400, e.what());
    }
  }
  std::string note = body.contains("note") ? body["note"].get<std::string>() : current.note;
  store_->set(id, state, note);
  send_json(res, selections_to_json(store_->selections()));
}

void ReviewServer::send_file(const httplib::Request& req, httplib::Response& res) {
  // Checked on the raw target: httplib has already turned %2e%2e%2f into ../ in req.path.
  const std::string prefix = "/files/", target = raw_target_path(req);
  if (target.rfind(prefix, 0) != 0) return send_error(res, 400, "refused: percent-escapes in '" + target + "'");
  std::string raw = target.substr(prefix.size());
  int status = check_file_request(store_->dir(), raw);
  if (status == 400) return send_error(res, 400, "refused: '" + raw + "' is not a plain relative path");
  if (status == 403) return send_error(res, 403, "refused: '" + raw + "' is not a sheet image inside the folder");
  if (status == 404) return send_error(res, 404, "no file '" + raw + "' in the sheet folder");
  auto file = store_->dir() / raw;
  res.set_header("Cache-Control", "no-cache");
  res.set_content(core::read_file(file), review_image_mime(file));
}

}  // namespace ls::review
