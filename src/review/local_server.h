// The local HTTP server under the review page and the caption editor: cpp-httplib bound to
// 127.0.0.1 only, a Host check against DNS rebinding, JSON errors for every refusal, limits on
// what one client may hold (local_server_connection.h), and start/stop that a signal handler or
// a test can drive. Each page adds its own routes.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "review/server_limits.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace ls::review {

class BoundedServer;

class LocalServer {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  /// `name` ("review", "captions") names the server in messages.
  LocalServer(std::string name, const ServerLimits& limits);
  ~LocalServer();  // stops and joins a start()ed server
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  /// Adds a route: `method` is GET (which answers HEAD too), POST, PUT or DELETE; `pattern` a
  /// regex over the whole decoded path. A path that another method's route matches is answered
  /// 405 with an Allow header instead of 404.
  void route(const std::string& method, const std::string& pattern, Handler handler);

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
  bool refuse_unrouted(const httplib::Request& req, httplib::Response& res) const;
  bool refuse_unframed_body(const httplib::Request& req, httplib::Response& res) const;

  struct Route {
    std::string method;
    std::regex pattern;
  };
  std::string name_;
  std::unique_ptr<BoundedServer> http_;
  std::vector<Route> routes_;  // set before start(), read by the error handler
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
