// A small HTTP/1.1 client over one kept-alive socket to 127.0.0.1, for the server load generator
// (server_load.h): requests as a browser page makes them, and raw bytes as a hostile client sends
// them. No gtest here (bench/bench_servers compiles this file too); every failure is a value.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ls::test {

struct LoadAnswer {
  int status = -1;     // -1: no whole answer
  std::string body;
  std::string error;   // what went wrong when there is no answer ("" otherwise)
  bool closes = false;  // the server said Connection: close, or closed after it
};

class LoadHttp {
 public:
  /// `timeout`: how long one request may take in all (connect, send, answer).
  LoadHttp(int port, std::chrono::milliseconds timeout);
  ~LoadHttp();
  LoadHttp(const LoadHttp&) = delete;
  LoadHttp& operator=(const LoadHttp&) = delete;

  /// One request on the kept connection (opened on first use and after the server closed it).
  /// A request sent on a reused connection that the server had closed meanwhile, answered by no
  /// byte at all, is sent once more on a fresh one (browsers do the same); retries() counts them.
  LoadAnswer request(const std::string& method, const std::string& target, const std::string& body = "",
                     const char* content_type = nullptr);
  int64_t retries() const { return retries_; }

  /// Raw use: connect (false when refused), send bytes (false when the peer closed or refused
  /// them), read one answer within `timeout` (a partial one is kept for the next call), wait for
  /// the server to close (true when it did; what it sent is read and dropped).
  bool open();
  void close();
  bool send_all(const std::string& bytes);
  LoadAnswer read_answer(std::chrono::milliseconds timeout);
  bool wait_closed(std::chrono::milliseconds timeout, std::string* received = nullptr);
  /// "Host: 127.0.0.1:PORT\r\n"
  std::string host_line() const;

 private:
  LoadAnswer exchange(const std::string& bytes);

  int port_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  bool reused_ = false;  // at least one answer came on this connection
  std::string pending_;  // bytes read past the last answer
  int64_t retries_ = 0;
};

}  // namespace ls::test
