// Raw HTTP test sockets; see raw_http.h.
#include "support/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include <gtest/gtest.h>

namespace ls::test {

namespace {

using RawClock = std::chrono::steady_clock;

std::string raw_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The length of the first whole answer in `text`, 0 when it is not complete yet.
size_t raw_complete_length(const std::string& text) {
  const size_t end = text.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  const std::string length = response_header(text.substr(0, end + 4), "Content-Length");
  const size_t body = length.empty() ? 0 : std::stoul(length);
  return text.size() >= end + 4 + body ? end + 4 + body : 0;
}

}  // namespace

RawConnection::RawConnection(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ADD_FAILURE() << "cannot connect to 127.0.0.1:" << port << ": " << std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::send(const std::string& bytes) {
  size_t done = 0;
  while (fd_ >= 0 && done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return fd_ >= 0;
}

std::string RawConnection::read_response(std::chrono::milliseconds timeout) {
  const auto until = RawClock::now() + timeout;
  std::string text = std::move(pending_);
  pending_.clear();
  char buf[16384];
  while (fd_ >= 0 && raw_complete_length(text) == 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - RawClock::now()).count();
    if (left <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) break;  // closed: what came is the answer
    text.append(buf, static_cast<size_t>(n));
  }
  const size_t whole = raw_complete_length(text);
  if (whole > 0) {
    pending_ = text.substr(whole);
    text.resize(whole);
  }
  return text;
}

bool RawConnection::wait_closed(std::chrono::milliseconds timeout) {
  const auto until = RawClock::now() + timeout;
  char buf[4096];
  while (fd_ >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - RawClock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return true;
  }
  return true;
}

int response_status(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return -1;
  return std::atoi(response.c_str() + 9);
}

std::string response_header(const std::string& response, const std::string& name) {
  const std::string want = raw_lower(name) + ":";
  size_t at = response.find("\r\n");
  while (at != std::string::npos && at + 2 < response.size()) {
    const size_t end = response.find("\r\n", at + 2);
    if (end == std::string::npos || end == at + 2) break;
    const std::string line = response.substr(at + 2, end - at - 2);
    if (raw_lower(line.substr(0, want.size())) == want) {
      std::string value = line.substr(want.size());
      value.erase(0, value.find_first_not_of(' '));
      return value;
    }
    at = end;
  }
  return "";
}

std::string response_body(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

std::string raw_exchange(int port, const std::string& request, std::chrono::milliseconds timeout) {
  RawConnection c(port);
  if (!c.send(request)) {
    // The server may answer and close before taking all of a refused request: read what it said.
  }
  return c.read_response(timeout);
}

}  // namespace ls::test
