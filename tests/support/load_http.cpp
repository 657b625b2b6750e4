// The load generator's HTTP client; see load_http.h. Answers are framed by Content-Length (the
// local servers always send one) or, without one, by the server closing the connection.
#include "load_http.h"  // by its own folder: bench/bench_servers.cpp compiles this file without tests/ on its path

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace ls::test {

namespace {

using LoadHttpClock = std::chrono::steady_clock;

bool load_header_is(const std::string& line, const char* name) {
  const size_t n = std::strlen(name);
  if (line.size() <= n || line[n] != ':') return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  return true;
}

std::string load_header_value(const std::string& line) {
  size_t at = line.find(':') + 1;
  while (at < line.size() && line[at] == ' ') ++at;
  return line.substr(at);
}

}  // namespace

LoadHttp::LoadHttp(int port, std::chrono::milliseconds timeout) : port_(port), timeout_(timeout) {}

LoadHttp::~LoadHttp() { close(); }

std::string LoadHttp::host_line() const { return "Host: 127.0.0.1:" + std::to_string(port_) + "\r\n"; }

bool LoadHttp::open() {
  close();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return false;
  // A send that the server stops reading (a refused huge request) must not block for ever.
  timeval tv{static_cast<time_t>(timeout_.count() / 1000), static_cast<suseconds_t>(timeout_.count() % 1000 * 1000)};
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close();
    return false;
  }
  return true;
}

void LoadHttp::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  reused_ = false;
  pending_.clear();
}

bool LoadHttp::send_all(const std::string& bytes) {
  size_t done = 0;
  while (fd_ >= 0 && done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return fd_ >= 0;
}

LoadAnswer LoadHttp::read_answer(std::chrono::milliseconds timeout) {
  LoadAnswer a;
  const auto until = LoadHttpClock::now() + timeout;
  std::string& text = pending_;
  size_t header_end = std::string::npos, body_at = 0, length = 0;
  bool has_length = false, eof = false;
  char buf[64 << 10];
  while (true) {
    if (header_end == std::string::npos && (header_end = text.find("\r\n\r\n")) != std::string::npos) {
      body_at = header_end + 4;
      if (text.rfind("HTTP/1.", 0) == 0 && text.size() >= 12) a.status = std::atoi(text.c_str() + 9);
      for (size_t at = text.find("\r\n"); at < header_end;) {
        const size_t next = text.find("\r\n", at + 2);
        const std::string line = text.substr(at + 2, next - at - 2);
        if (load_header_is(line, "content-length")) {
          has_length = true;
          length = std::strtoull(load_header_value(line).c_str(), nullptr, 10);
        } else if (load_header_is(line, "connection") && load_header_value(line) == "close") {
          a.closes = true;
        }
        at = next;
      }
      if (a.status < 0) {
        a.error = "not an HTTP answer: " + text.substr(0, std::min<size_t>(header_end, 80));
        close();
        return a;
      }
    }
    if (header_end != std::string::npos && ((has_length && text.size() >= body_at + length) || (!has_length && eof))) {
      const size_t whole = has_length ? body_at + length : text.size();
      a.body = text.substr(body_at, whole - body_at);
      text.erase(0, whole);
      if (eof) a.closes = true;
      if (a.closes) close();
      return a;
    }
    if (eof || fd_ < 0) {
      a.status = -1;
      a.error = text.empty() ? "connection closed before any answer" : "connection closed mid-answer";
      close();
      return a;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - LoadHttpClock::now()).count();
    if (left <= 0) {
      a.status = -1;
      a.error = "no whole answer within " + std::to_string(timeout.count()) + " ms";
      return a;  // what came stays in pending_ for the next call
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno != EINTR) eof = true;
    if (r <= 0) continue;
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof = true;
      continue;
    }
    text.append(buf, static_cast<size_t>(n));
  }
}

bool LoadHttp::wait_closed(std::chrono::milliseconds timeout, std::string* received) {
  const auto until = LoadHttpClock::now() + timeout;
  char buf[4096];
  while (fd_ >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - LoadHttpClock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) break;
    if (received) received->append(buf, static_cast<size_t>(n));
  }
  close();
  return true;
}

LoadAnswer LoadHttp::exchange(const std::string& bytes) {
  if (fd_ < 0 && !open()) {
    LoadAnswer a;
    a.error = "cannot connect to 127.0.0.1:" + std::to_string(port_) + ": " + std::strerror(errno);
    return a;
  }
  const bool sent = send_all(bytes);
  LoadAnswer a = read_answer(timeout_);
  if (a.status < 0 && !sent && a.error.empty()) a.error = "send failed";
  if (a.status > 0) reused_ = !a.closes;
  // An answer that comes late must not be taken for the next request's.
  if (a.status < 0) close();
  return a;
}

LoadAnswer LoadHttp::request(const std::string& method, const std::string& target, const std::string& body,
                             const char* content_type) {
  std::string bytes = method + " " + target + " HTTP/1.1\r\n" + host_line();
  if (content_type) bytes += std::string("Content-Type: ") + content_type + "\r\n";
  if (!body.empty() || method == "PUT" || method == "POST") bytes += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  bytes += "\r\n" + body;
  const bool was_reused = reused_ && fd_ >= 0;
  LoadAnswer a = exchange(bytes);
  if (a.status < 0 && was_reused && a.error == "connection closed before any answer") {
    ++retries_;
    close();
    a = exchange(bytes);
  }
  return a;
}

}  // namespace ls::test
