// The review server's routes over cpp-httplib (yhirose/cpp-httplib, Debian's libcpp-httplib):
// bound to 127.0.0.1 only, with a Host check against DNS rebinding and a JSON content type on
// writes (a cross-site form cannot send one without a CORS preflight, which is never granted).
#include "review/review_server.h"

#include <chrono>
#include <system_error>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "review/review_page.h"
#include "review/review_store.h"

namespace ls::review {

namespace {

void send_review_json(httplib::Response& res, const nlohmann::json& body, int status = 200) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_review_error(httplib::Response& res, int status, const std::string& message) {
  send_review_json(res, {{"error", message}}, status);
}

// True when `inner` is `outer` or lies below it, comparing whole path elements.
bool review_path_within(const std::filesystem::path& outer, const std::filesystem::path& inner) {
  auto o = outer.begin(), i = inner.begin();
  for (; o != outer.end(); ++o, ++i) {
    if (o->empty() && std::next(o) == outer.end()) break;  // a trailing separator
    if (i == inner.end() || *o != *i) return false;
  }
  return true;
}

const char* review_image_mime(const std::filesystem::path& file) {
  return file.extension() == ".png" ? "image/png" : "application/octet-stream";
}

// The request target's path as sent, before httplib's percent-decoding.
std::string raw_target_path(const httplib::Request& req) {
  return req.target.substr(0, req.target.find('?'));
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
  if (!review_path_within(root, target) || target == root) return 403;  // a symlink leading out
  if (!std::filesystem::is_regular_file(target, ec)) return 404;
  return 0;
}

ReviewServer::ReviewServer(const std::filesystem::path& sheet_dir)
    : store_(std::make_unique<ReviewStore>(sheet_dir)),
      http_(std::make_unique<httplib::Server>()),
      page_(review_page_html()) {
  http_->set_payload_max_length(1 << 20);  // a note, not an upload
  // An idle browser connection holds stop() for up to this long; reconnecting on loopback is free.
  http_->set_keep_alive_timeout(1);
  // httplib's default adds SO_REUSEPORT, which lets a second server share a busy port silently.
  http_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  add_routes();
}

ReviewServer::~ReviewServer() { stop(); }

int ReviewServer::bind(int port) {
  LS_CHECK(port >= 0 && port <= 65535, "--port ", port, " is not a TCP port; use 1..65535, or 0 for any free port");
  if (port == 0) {
    port_ = http_->bind_to_any_port("127.0.0.1");
  } else {
    port_ = http_->bind_to_port("127.0.0.1", port) ? port : -1;
  }
  LS_CHECK(port_ > 0, "cannot listen on 127.0.0.1:", port,
           " (in use?); pick another --port, or --port 0 for any free one");
  return port_;
}

void ReviewServer::serve() {
  LS_CHECK(port_ > 0, "ReviewServer::serve: bind() first");
  http_->listen_after_bind();
}

void ReviewServer::start() {
  if (port_ <= 0) bind(0);
  thread_ = std::thread([this] { serve(); });
  // The socket already listens (connections queue), but stop() only works once the loop runs.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!http_->is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  LS_CHECK(http_->is_running(), "review server on ", url(), " did not start");
}

void ReviewServer::stop() {
  if (http_) http_->stop();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::string ReviewServer::url() const { return str_cat("http://127.0.0.1:", port_, "/"); }

bool ReviewServer::host_allowed(const std::string& host) const {
  std::string port = std::to_string(port_);
  return host == "127.0.0.1:" + port || host == "localhost:" + port;
}

void ReviewServer::add_routes() {
  auto& http = *http_;
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (host_allowed(req.get_header_value("Host"))) return httplib::Server::HandlerResponse::Unhandled;
    send_review_error(res, 403, "Host '" + req.get_header_value("Host") + "' refused; open " + url());
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty()) send_review_error(res, res.status, str_cat("no route for ", req.method, " ", req.path));
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    send_review_error(res, 500, message);
  });

  http.Get("/", [this](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(page_, "text/html; charset=utf-8");
  });
  http.Get("/sheet.json", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    store_->refresh_sheet();
    send_review_json(res, store_->sheet().doc);
  });
  http.Get("/api/selections", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    send_review_json(res, selections_to_json(store_->selections()));
  });
  http.Get("/api/summary", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    store_->refresh_sheet();
    send_review_json(res, summary_to_json(store_->summary()));
  });
  auto put = [this](const httplib::Request& req, httplib::Response& res) { put_selection(req, res); };
  http.Put(R"(/api/selections/([^/]+))", put);
  http.Post(R"(/api/selections/([^/]+))", put);
  http.Get(R"(/files/.*)", [this](const httplib::Request& req, httplib::Response& res) { send_file(req, res); });
}

// PUT/POST /api/selections/<id>: either field may be left out to keep it.
void ReviewServer::put_selection(const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  if (req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
    return send_review_error(res, 415, "send the choice as Content-Type: application/json");
  }
  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
  if (!body.is_object()) return send_review_error(res, 400, "the body must be a JSON object {state, note}");
  for (const auto& [key, value] : body.items()) {
    if (key != "state" && key != "note") return send_review_error(res, 400, "unknown key '" + key + "' (state, note)");
    if (!value.is_string()) return send_review_error(res, 400, key + " must be a string");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (!store_->sheet().find(id) && (!store_->refresh_sheet() || !store_->sheet().find(id))) {
    return send_review_error(res, 404, "no cell with id '" + id + "' in this sheet");
  }
  auto it = store_->selections().find(id);
  Selection current = it == store_->selections().end() ? Selection{} : it->second;
  CellState state = current.state;
  if (body.contains("state")) {
    try {
      state = parse_state(body["state"].get<std::string>(), "cell " + id);
    } catch (const Error& e) {
      return send_review_error(res, 400, e.what());
    }
  }
  std::string note = body.contains("note") ? body["note"].get<std::string>() : current.note;
  store_->set(id, state, note);
  send_review_json(res, selections_to_json(store_->selections()));
}

void ReviewServer::send_file(const httplib::Request& req, httplib::Response& res) {
  // Checked on the raw target: httplib has already turned %2e%2e%2f into ../ in req.path.
  const std::string prefix = "/files/", target = raw_target_path(req);
  if (target.rfind(prefix, 0) != 0) return send_review_error(res, 400, "refused: percent-escapes in '" + target + "'");
  std::string raw = target.substr(prefix.size());
  int status = check_file_request(store_->dir(), raw);
  if (status == 400) return send_review_error(res, 400, "refused: '" + raw + "' is not a plain relative path");
  if (status == 403) return send_review_error(res, 403, "refused: '" + raw + "' is not a sheet image inside the folder");
  if (status == 404) return send_review_error(res, 404, "no file '" + raw + "' in the sheet folder");
  auto file = store_->dir() / raw;
  res.set_header("Cache-Control", "no-cache");
  res.set_content(core::read_file(file), review_image_mime(file));
}

}  // namespace ls::review
