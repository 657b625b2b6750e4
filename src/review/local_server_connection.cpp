// The local servers' connection handling (see local_server_connection.h). The loop follows
// httplib 0.11.4's process_server_socket_core (yhirose/cpp-httplib, httplib.h) with its
// per-request Stream replaced by one that enforces ServerLimits and keeps read-ahead bytes
// across the requests of a connection.
#include "review/local_server_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ls::review {

namespace {

using Clock = std::chrono::steady_clock;

thread_local bool connection_close_requested = false;

constexpr std::chrono::milliseconds kLingerTime{500};
constexpr size_t kLingerBytes = size_t(1) << 20;

// A pool that starts a worker whenever a connection would otherwise wait for one, up to
// `max_workers`: a keep-alive connection holds its worker while idle, so a fixed pool of 8 is
// starved by 8 idle browsers tabs or 8 slow clients.
class GrowingTaskQueue final : public httplib::TaskQueue {
 public:
  explicit GrowingTaskQueue(size_t max_workers) : max_workers_(std::max<size_t>(1, max_workers)) {}
  ~GrowingTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(fn));
    if (jobs_.size() > idle_ && workers_.size() < max_workers_) workers_.emplace_back([this] { work(); });
    cond_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    cond_.notify_all();
    for (auto& t : workers_) t.join();  // enqueue() is no longer called: the listen loop has ended
  }

 private:
  void work() {
    while (true) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ++idle_;
        cond_.wait(lock, [this] { return !jobs_.empty() || stopping_; });
        --idle_;
        if (jobs_.empty()) return;  // stopping, nothing left
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
    }
  }

  const size_t max_workers_;
  std::mutex mutex_;
  std::condition_variable cond_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> workers_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

// One connection's bytes. Reads fail (-1, and failed() turns true) once the request's headers
// pass max_header_bytes, its body passes max_body (+ framing), or a deadline passes: idle_gap
// without progress, header_time for the request line and headers, body_time for the whole
// request, response_time for the answer from its first byte. httplib answers a failed read with
// 400 and the loop then closes the connection.
class BoundedStream final : public httplib::Stream {
 public:
  BoundedStream(socket_t sock, const ServerLimits& limits, const std::atomic<socket_t>& listening)
      : sock_(sock), limits_(limits), listening_(listening) {}

  // Waits up to keep_alive for the next request's first byte; false: closed, idle or stopping.
  bool wait_for_request() {
    if (pos_ < len_) return true;
    return wait(POLLIN, Clock::now() + limits_.keep_alive) && fill();
  }

  void begin_request() {
    const auto now = Clock::now();
    header_deadline_ = now + limits_.header_time;
    body_deadline_ = now + limits_.body_time;
    in_headers_ = true;
    header_bytes_ = body_bytes_ = 0;
    crlf_state_ = 0;
    writing_ = false;
  }

  bool failed() const { return read_failed_ || write_failed_; }

  // Reads and drops what the client still sends, until it closes, `time` passes or `bytes` came.
  void drain(std::chrono::milliseconds time, size_t bytes) {
    const auto until = Clock::now() + time;
    for (size_t got = 0; got < bytes && wait(POLLIN, until);) {
      const ssize_t n = ::recv(sock_, buffer_.data(), buffer_.size(), 0);
      if (n <= 0) return;
      got += static_cast<size_t>(n);
    }
  }

  bool is_readable() const override { return pos_ < len_ || wait(POLLIN, read_until()); }
  bool is_writable() const override { return wait(POLLOUT, write_until()); }

  ssize_t read(char* ptr, size_t size) override {
    if (read_failed_ || size == 0) return read_failed_ ? -1 : 0;
    if (pos_ == len_) {
      if (!wait(POLLIN, read_until())) return fail_read();
      if (!fill()) return eof_ ? 0 : fail_read();
    }
    size_t n = std::min(size, len_ - pos_);
    if (in_headers_) {
      // Header bytes one at a time (httplib reads them so): the end is the first blank line.
      n = 1;
      if (++header_bytes_ > limits_.max_header_bytes) return fail_read();
      const char c = buffer_[pos_];
      crlf_state_ = c == '\r' ? (crlf_state_ == 2 ? 3 : 1) : c == '\n' ? (crlf_state_ == 1 ? 2 : crlf_state_ == 3 ? 4 : 0) : 0;
      if (crlf_state_ == 4) in_headers_ = false;
    } else {
      body_bytes_ += n;
      if (body_bytes_ > limits_.max_body + kBodyFramingSlack) return fail_read();
    }
    std::copy_n(buffer_.data() + pos_, n, ptr);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!writing_) {
      writing_ = true;
      response_deadline_ = Clock::now() + limits_.response_time;
    }
    // A failed read still gets its answer (httplib's 400), within the response deadline.
    if (write_failed_ || !wait(POLLOUT, write_until())) return fail_write();
    const ssize_t n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    return n < 0 ? fail_write() : n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(false, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  // Chunk sizes and their line ends around a body of max_body bytes.
  static constexpr size_t kBodyFramingSlack = 64 << 10;

  ssize_t fail_read() {
    read_failed_ = true;
    return -1;
  }
  ssize_t fail_write() {
    write_failed_ = true;
    return -1;
  }

  Clock::time_point read_until() const {
    return std::min(Clock::now() + limits_.idle_gap, in_headers_ ? header_deadline_ : body_deadline_);
  }
  Clock::time_point write_until() const {
    const auto gap = Clock::now() + limits_.idle_gap;
    return writing_ ? std::min(gap, response_deadline_) : gap;
  }

  // poll() in short slices so that stop() (which closes the listening socket) ends a wait soon.
  bool wait(short events, Clock::time_point until) const {
    while (listening_ != INVALID_SOCKET) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{sock_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100)));
      if (r > 0) return (p.revents & (events | POLLHUP | POLLERR)) != 0;
      if (r < 0 && errno != EINTR) return false;
    }
    return false;
  }

  // One recv into the read-ahead buffer (called when it is empty); false at EOF or an error.
  bool fill() {
    const ssize_t n = ::recv(sock_, buffer_.data(), buffer_.size(), 0);
    if (n <= 0) {
      eof_ = n == 0;
      return false;
    }
    pos_ = 0;
    len_ = static_cast<size_t>(n);
    return true;
  }

  void address_of(bool peer, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof(addr);
    const int r = peer ? ::getpeername(sock_, reinterpret_cast<sockaddr*>(&addr), &addr_len)
                       : ::getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &addr_len);
    std::array<char, INET6_ADDRSTRLEN> text{};
    ip.clear();
    port = 0;
    if (r != 0) return;
    if (addr.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
      if (::inet_ntop(AF_INET, &a->sin_addr, text.data(), text.size())) ip = text.data();
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
      if (::inet_ntop(AF_INET6, &a->sin6_addr, text.data(), text.size())) ip = text.data();
      port = ntohs(a->sin6_port);
    }
  }

  const socket_t sock_;
  const ServerLimits& limits_;
  const std::atomic<socket_t>& listening_;
  std::array<char, 16 << 10> buffer_{};
  size_t pos_ = 0, len_ = 0;
  bool eof_ = false, read_failed_ = false, write_failed_ = false;
  bool in_headers_ = true, writing_ = false;
  int crlf_state_ = 0;  // how much of "\r\n\r\n" the header bytes end with
  size_t header_bytes_ = 0, body_bytes_ = 0;
  Clock::time_point header_deadline_{}, body_deadline_{}, response_deadline_{};
};

}  // namespace

BoundedServer::BoundedServer(const ServerLimits& limits) : limits_(limits) {
  set_payload_max_length(limits_.max_body);
  set_keep_alive_max_count(std::max<size_t>(1, limits_.keep_alive_requests));
  // What the Keep-Alive answer header announces (whole seconds); the wait itself is keep_alive.
  set_keep_alive_timeout(std::max<time_t>(1, std::chrono::duration_cast<std::chrono::seconds>(limits_.keep_alive).count()));
  const auto gap = std::chrono::duration_cast<std::chrono::microseconds>(limits_.idle_gap).count();
  set_read_timeout(gap / 1000000, gap % 1000000);  // SO_RCVTIMEO/SO_SNDTIMEO under our poll()s
  set_write_timeout(gap / 1000000, gap % 1000000);
  const size_t workers = limits_.max_workers;
  new_task_queue = [workers] { return new GrowingTaskQueue(workers); };
}

void BoundedServer::widen_backlog() {
  // Linux lets a listening socket's backlog be set again; the kernel caps it at somaxconn.
  if (svr_sock_ != INVALID_SOCKET) ::listen(svr_sock_, 256);
}

void BoundedServer::close_after_response() { connection_close_requested = true; }

bool BoundedServer::process_and_close_socket(socket_t sock) {
  // httplib sends an answer as two writes, headers then body; with Nagle's algorithm the body
  // waits for the ACK of the headers, which the client delays (40 ms at least on Linux), so
  // every answer after the first few on a kept-alive connection took 40 ms more.
  int one = 1;
  ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  BoundedStream stream(sock, limits_, svr_sock_);
  bool ok = false;
  for (size_t left = std::max<size_t>(1, limits_.keep_alive_requests); left > 0 && svr_sock_ != INVALID_SOCKET; --left) {
    if (!stream.wait_for_request()) break;
    stream.begin_request();
    connection_close_requested = false;
    bool closed = false;
    ok = process_request(stream, /*close_connection=*/left == 1, closed, nullptr);
    if (!ok || closed || stream.failed() || connection_close_requested) break;
  }
  connection_close_requested = false;
  // A close with unread bytes sends a reset, which can destroy the answer still on its way to a
  // client that is sending a refused body: stop writing, drain briefly, then close (nginx's
  // lingering close).
  ::shutdown(sock, SHUT_WR);
  if (svr_sock_ != INVALID_SOCKET) stream.drain(kLingerTime, kLingerBytes);
  ::close(sock);
  return ok;
}

}  // namespace ls::review
