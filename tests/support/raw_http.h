// HTTP over raw sockets to 127.0.0.1, for tests that send what no client library would: broken
// request lines, huge or contradictory headers, bodies trickled a byte at a time, connections
// that are opened and never used.
#pragma once

#include <chrono>
#include <string>

namespace ls::test {

/// A TCP connection to 127.0.0.1:port, closed when the object dies.
class RawConnection {
 public:
  explicit RawConnection(int port);  // fails the test (and is_open() false) when it cannot connect
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool is_open() const { return fd_ >= 0; }
  /// Sends all of `bytes`; false when the peer has closed or refused them.
  bool send(const std::string& bytes);
  /// Reads one answer: the status line and headers, then Content-Length bytes of body; or, when
  /// the server closes first, what came. Gives up after `timeout` ("" when nothing came).
  std::string read_response(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  /// Waits up to `timeout` for the server to close the connection; true when it did (what it
  /// sent before closing is read and dropped).
  bool wait_closed(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  std::string pending_;  // bytes read past the last answer
};

/// The status code of an answer's first line ("HTTP/1.1 404 Not Found" -> 404); -1 when none.
int response_status(const std::string& response);
/// The value of an answer's header (case-insensitive name), "" when absent.
std::string response_header(const std::string& response, const std::string& name);
/// The answer's body (after the blank line).
std::string response_body(const std::string& response);

/// Sends `request` on a fresh connection and returns the answer.
std::string raw_exchange(int port, const std::string& request,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

}  // namespace ls::test
