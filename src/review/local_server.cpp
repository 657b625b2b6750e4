// cpp-httplib (yhirose/cpp-httplib, Debian's libcpp-httplib) set up for a page served to this
// machine's browser only. Writes must carry a JSON content type: a cross-site form cannot send
// one without a CORS preflight, which is never granted. A request body must come with one plain
// Content-Length: httplib would read a chunked or length-less body without its size limit and
// inflate a gzip body with no limit at all.
#include "review/local_server.h"

#include <algorithm>
#include <chrono>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "review/local_server_connection.h"

namespace ls::review {

void send_json(httplib::Response& res, const nlohmann::json& body, int status) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  // With a charset the type is not one httplib compresses: Debian's build would answer a browser
  // (Accept-Encoding: br) with Brotli at its slowest quality, 2.4 s for the 1 MB list of 2,000
  // captions where sending it uncompressed over loopback takes milliseconds.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json; charset=utf-8");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, {{"error", message}}, status);
}

bool json_object_body(const httplib::Request& req, httplib::Response& res, nlohmann::json& body) {
  if (req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
    send_error(res, 415, "send the request body as Content-Type: application/json");
    return false;
  }
  body = nlohmann::json::parse(req.body, nullptr, false);
  if (!body.is_object()) {
    send_error(res, 400, "the body must be a JSON object");
    return false;
  }
  return true;
}

std::string raw_target_path(const httplib::Request& req) { return req.target.substr(0, req.target.find('?')); }

namespace {

// The statuses httplib sets itself before any route runs, said in words.
std::string local_server_status_message(const httplib::Request& req, int status, size_t max_body) {
  switch (status) {
    case 400: return "malformed request (request line, headers or body; or sent too slowly)";
    case 413: return str_cat("request body over ", max_body, " bytes");
    case 414: return "request target too long";
    case 416: return "bad Range header";
    default: return str_cat("refused ", req.method, " ", req.path);
  }
}

// Methods whose body httplib reads (its detail::expect_content).
bool local_server_reads_body(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE" || method == "PRI";
}

}  // namespace

LocalServer::LocalServer(std::string name, const ServerLimits& limits)
    : name_(std::move(name)), http_(std::make_unique<BoundedServer>(limits)) {
  // httplib's default adds SO_REUSEPORT, which lets a second server share a busy port silently.
  http_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // Runs after the headers are read and before httplib reads any body.
  http_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!host_allowed(req.get_header_value("Host"))) {
      send_error(res, 403, "Host '" + req.get_header_value("Host") + "' refused; open " + url());
    } else if (!refuse_unrouted(req, res) && !refuse_unframed_body(req, res)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    if (local_server_reads_body(req.method) || req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
      // Its body is left unread: what follows on the connection is not a request.
      res.set_header("Connection", "close");
      BoundedServer::close_after_response();
    }
    return httplib::Server::HandlerResponse::Handled;
  });
  http_->set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty()) send_error(res, res.status, local_server_status_message(req, res.status, http_->limits().max_body));
  });
  http_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    send_error(res, 500, message);
  });
}

LocalServer::~LocalServer() { stop(); }

void LocalServer::route(const std::string& method, const std::string& pattern, Handler handler) {
  if (method == "GET") {
    http_->Get(pattern, std::move(handler));
  } else if (method == "POST") {
    http_->Post(pattern, std::move(handler));
  } else if (method == "PUT") {
    http_->Put(pattern, std::move(handler));
  } else if (method == "DELETE") {
    http_->Delete(pattern, std::move(handler));
  } else {
    LS_FAIL(name_, " server: no routes for method ", method);
  }
  routes_.push_back({method, std::regex(pattern)});
}

// 404 when no route matches the path, 405 (with Allow) when only other methods' routes do.
// True when `res` now holds the refusal.
bool LocalServer::refuse_unrouted(const httplib::Request& req, httplib::Response& res) const {
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  std::vector<std::string> allow;
  for (const auto& r : routes_) {
    if (!std::regex_match(req.path, r.pattern)) continue;
    if (r.method == method) return false;
    for (const char* m : {r.method.c_str(), r.method == "GET" ? "HEAD" : ""})
      if (*m && std::find(allow.begin(), allow.end(), m) == allow.end()) allow.push_back(m);
  }
  if (allow.empty()) {
    send_error(res, 404, str_cat("no route for ", req.method, " ", req.path));
    return true;
  }
  std::string list;
  for (const auto& m : allow) list += (list.empty() ? "" : ", ") + m;
  res.set_header("Allow", list);
  send_error(res, 405, str_cat(req.method, " is not allowed on ", req.path, "; use ", list));
  return true;
}

// A body must be framed by one Content-Length of digits no larger than max_body, and not encoded.
// True when `res` now holds the refusal.
bool LocalServer::refuse_unframed_body(const httplib::Request& req, httplib::Response& res) const {
  const size_t max_body = http_->limits().max_body;
  if (req.has_header("Transfer-Encoding")) {
    send_error(res, 411, "send the request body with a Content-Length, not Transfer-Encoding");
    return true;
  }
  if (req.has_header("Content-Encoding") && req.get_header_value("Content-Encoding") != "identity") {
    send_error(res, 415, "compressed request bodies are not accepted");
    return true;
  }
  const size_t lengths = req.get_header_value_count("Content-Length");
  if (lengths == 0) {
    if (!local_server_reads_body(req.method)) return false;
    send_error(res, 411, str_cat(req.method, " needs a Content-Length"));
    return true;
  }
  const std::string text = req.get_header_value("Content-Length");
  bool digits = lengths == 1 && !text.empty() && text.size() <= 19 &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    send_error(res, 400, "Content-Length must be one whole number of bytes");
    return true;
  }
  const unsigned long long length = std::stoull(text);
  if (length > max_body) {
    send_error(res, 413, str_cat("request body of ", length, " bytes is over the limit of ", max_body));
    return true;
  }
  if (length > 0 && !local_server_reads_body(req.method)) {
    send_error(res, 400, str_cat(req.method, " requests carry no body"));
    return true;
  }
  return false;
}

int LocalServer::bind(int port) {
  LS_CHECK(port >= 0 && port <= 65535, "--port ", port, " is not a TCP port; use 1..65535, or 0 for any free port");
  if (port == 0) {
    port_ = http_->bind_to_any_port("127.0.0.1");
  } else {
    port_ = http_->bind_to_port("127.0.0.1", port) ? port : -1;
  }
  LS_CHECK(port_ > 0, "cannot listen on 127.0.0.1:", port,
           " (in use?); pick another --port, or --port 0 for any free one");
  http_->widen_backlog();
  return port_;
}

void LocalServer::serve() {
  LS_CHECK(port_ > 0, name_, " server: bind() first");
  http_->listen_after_bind();
}

void LocalServer::start() {
  if (port_ <= 0) bind(0);
  thread_ = std::thread([this] { serve(); });
  // The socket already listens (connections queue), but stop() only works once the loop runs.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!http_->is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  LS_CHECK(http_->is_running(), name_, " server on ", url(), " did not start");
}

void LocalServer::stop() {
  if (http_) http_->stop();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::string LocalServer::url() const { return str_cat("http://127.0.0.1:", port_, "/"); }

bool LocalServer::host_allowed(const std::string& host) const {
  std::string port = std::to_string(port_);
  return host == "127.0.0.1:" + port || host == "localhost:" + port;
}

}  // namespace ls::review
