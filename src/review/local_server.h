// The local HTTP server under the review page and the caption editor: cpp-httplib bound to
// 127.0.0.1 only, a Host check against DNS rebinding, JSON errors for every refusal, and
// start/stop that a signal handler or a test can drive. Each page adds its own routes.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json_fwd.hpp>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace ls::review {

class LocalServer {
 public:
  /// `name` ("review", "captions") names the server in messages; `max_body` bounds a request body.
  LocalServer(std::string name, size_t max_body);
  ~LocalServer();  // stops and joins a start()ed server
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  /// Where the routes go. The Host check and the JSON error handlers are already installed.
  httplib::Server& http() { return *http_; }

  /// Binds 127.0.0.1:port (0 = any free port) and returns the port; ls::Error when it is taken.
  int bind(int port = 0);
  /// Serves until stop(); bind() first.
  void serve();
  /// serve() on a background thread; returns once the server accepts connections.
  void start();
  /// Makes serve() return; safe from any thread, idempotent.
  void stop();

  int port() const { return port_; }
  /// "http://127.0.0.1:PORT/"
  std::string url() const;

 private:
  bool host_allowed(const std::string& host) const;

  std::string name_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = -1;
  std::thread thread_;
};

/// `body` as the answer, uncached; invalid UTF-8 in strings replaced.
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);
/// {"error": message} with `status`.
void send_error(httplib::Response& res, int status, const std::string& message);
/// The request's JSON object body: false (and a 415 or 400 answer sent) when it is not one.
bool json_object_body(const httplib::Request& req, httplib::Response& res, nlohmann::json& body);
/// The request target's path as sent, before httplib's percent-decoding.
std::string raw_target_path(const httplib::Request& req);

}  // namespace ls::review
