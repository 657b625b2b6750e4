// How the local servers read a connection: cpp-httplib's request parsing, but every byte read
// through a stream that bounds the headers' size, the body's size and the time a request and its
// answer may take, and a worker pool that grows with the connections, so a client that sends
// slowly (slowloris), sends too much or never reads its answer holds one thread for a bounded
// time and never the others'. httplib 0.11 (Debian's) has per-recv timeouts only: a byte every
// 4 s keeps its worker forever, its pool is 8 threads, its listen backlog 5, and it reads header
// lines without a count limit; docs/sheet.md lists the limits that replace those.
#pragma once

#include <httplib.h>

#include "review/server_limits.h"

namespace ls::review {

class BoundedServer : public httplib::Server {
 public:
  explicit BoundedServer(const ServerLimits& limits);

  /// After a bind: a listen backlog that holds a burst of clients connecting at once (httplib
  /// listens with 5, so the 6th simultaneous connect waits for a SYN retransmit, 1 s).
  void widen_backlog();
  /// From a handler (it runs on the connection's thread): close the connection after this
  /// answer, e.g. when the request's body was refused unread.
  static void close_after_response();

  const ServerLimits& limits() const { return limits_; }

 private:
  // httplib's connection loop (keep-alive, request after request), with BoundedStream.
  bool process_and_close_socket(socket_t sock) override;

  ServerLimits limits_;
};

}  // namespace ls::review
