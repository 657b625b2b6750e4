// cpp-httplib (yhirose/cpp-httplib, Debian's libcpp-httplib) set up for a page served to this
// machine's browser only. Writes must carry a JSON content type: a cross-site form cannot send
// one without a CORS preflight, which is never granted.
#include "review/local_server.h"

#include <chrono>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"

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

LocalServer::LocalServer(std::string name, size_t max_body)
    : name_(std::move(name)), http_(std::make_unique<httplib::Server>()) {
  http_->set_payload_max_length(max_body);
  // An idle browser connection holds stop() for up to this long; reconnecting on loopback is free.
  http_->set_keep_alive_timeout(1);
  // httplib's default adds SO_REUSEPORT, which lets a second server share a busy port silently.
  http_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (host_allowed(req.get_header_value("Host"))) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, 403, "Host '" + req.get_header_value("Host") + "' refused; open " + url());
    return httplib::Server::HandlerResponse::Handled;
  });
  http_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty()) send_error(res, res.status, str_cat("no route for ", req.method, " ", req.path));
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

int LocalServer::bind(int port) {
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
