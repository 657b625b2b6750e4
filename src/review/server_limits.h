// What one client of a local server may send and hold: shared by the server (local_server) and
// its connection reader (local_server_connection), which must not include each other.
#pragma once

#include <chrono>
#include <cstddef>

namespace ls::review {

/// What one client may send and hold. A request over a size limit is answered 413 (body) or 400
/// (headers); one that is too slow gets httplib's 400 and its connection is closed; a connection
/// idle between requests is closed. Times are per request, from its first byte.
struct ServerLimits {
  size_t max_body = size_t(1) << 20;         // Content-Length above this: 413, body unread
  size_t max_header_bytes = size_t(64) << 10;  // request line + headers (httplib: 8 KiB a line)
  std::chrono::milliseconds idle_gap{5000};       // a read or write making no progress this long
  std::chrono::milliseconds header_time{10000};   // the request line and headers in full
  std::chrono::milliseconds body_time{30000};     // the whole request
  std::chrono::milliseconds response_time{30000}; // the answer, from its first byte
  std::chrono::milliseconds keep_alive{2000};     // an idle connection between requests
  size_t keep_alive_requests = 1000;              // requests on one connection before it closes
  size_t max_workers = 512;                       // connections served at once (others queue)
};

}  // namespace ls::review
