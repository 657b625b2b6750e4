// The load test's attacker (server_load.h attack_servers): while the clients work, requests no
// page sends — headers over the limit, bad JSON, wrong methods, `..` paths, the wrong Host,
// bodies over the limit or framed otherwise than by one Content-Length — each on a fresh
// connection and each expecting the status docs/sheet.md's table gives it; and slow clients:
// bodies and headers a byte a second (answered 400 at the body or header deadline, or when the
// short body turns out not to be JSON) and connections that never send (closed after the
// keep-alive wait). The bounds come from review::ServerLimits, the servers' defaults.
#include "server_load.h"  // by its own folder: bench/bench_servers.cpp compiles this file without tests/ on its path

#include <atomic>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "load_http.h"
#include "review/server_limits.h"

namespace ls::test {

namespace {

using AttackClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kAttackAnswerTime{10000};  // a fast case's answer: generous, it takes ~1 ms
constexpr milliseconds kAttackSlack{10000};       // past a server deadline, before a case counts as hung

struct AttackCounts {
  std::atomic<int64_t> sent{0}, answered{0}, closed{0}, wrong{0}, hung{0};
};

struct AttackCase {
  std::string what;
  int port = 0;
  std::string bytes;
  int expected = 0;
};

struct AttackServer {
  std::string name;
  int port = 0;
  std::string host;        // "Host: ..." line
  std::string write_path;  // a route that takes a JSON body by PUT
};

std::string attack_with_body(const AttackServer& s, const std::string& method, const std::string& target,
                             const std::string& type, const std::string& body) {
  return method + " " + target + " HTTP/1.1\r\n" + s.host + "Content-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::vector<AttackCase> attack_cases(const AttackTargets& t) {
  const review::ServerLimits limits;
  const std::vector<AttackServer> servers = {
      {"review", t.review_port, "Host: 127.0.0.1:" + std::to_string(t.review_port) + "\r\n",
       "/api/selections/" + t.review_cell},
      {"captions", t.captions_port, "Host: 127.0.0.1:" + std::to_string(t.captions_port) + "\r\n", "/api/caption"}};
  std::string many;  // each line under httplib's 8 KiB, all together over max_header_bytes
  for (int i = 0; many.size() <= limits.max_header_bytes; ++i) many += str_cat("X-Filler-", i, ": ", std::string(1000, 'b'), "\r\n");
  const std::string json = "application/json";
  std::vector<AttackCase> cases;
  for (const auto& s : servers) {
    auto add = [&](const std::string& what, std::string bytes, int expected) {
      cases.push_back({s.name + ": " + what, s.port, std::move(bytes), expected});
    };
    const std::string get = "GET / HTTP/1.1\r\n" + s.host;
    add("garbage request line", "HELLO\r\n\r\n", 400);
    add("request line + headers over the limit", get + many + "\r\n", 400);
    add("a header line over 8 KiB", get + "X-Big: " + std::string(10000, 'a') + "\r\n\r\n", 400);
    add("request target over 8 KiB", "GET /" + std::string(9000, 'x') + " HTTP/1.1\r\n" + s.host + "\r\n", 414);
    add("wrong Host", "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", 403);
    add("OPTIONS /", "OPTIONS / HTTP/1.1\r\n" + s.host + "\r\n", 405);
    add("a GET with a body", get + "Content-Length: 5\r\n\r\nhello", 400);
    add("no such route", "GET /nowhere HTTP/1.1\r\n" + s.host + "\r\n", 404);
    add("bad JSON", attack_with_body(s, "PUT", s.write_path, json, "{nope"), 400);
    add("a JSON array body", attack_with_body(s, "PUT", s.write_path, json, "[1,2]"), 400);
    add("not application/json", attack_with_body(s, "PUT", s.write_path, "text/plain", "{}"), 415);
    add("body over the limit", "PUT " + s.write_path + " HTTP/1.1\r\n" + s.host + "Content-Type: application/json\r\n" +
                                   "Content-Length: 99999999999\r\n\r\n", 413);
    add("chunked body", "PUT " + s.write_path + " HTTP/1.1\r\n" + s.host + "Content-Type: application/json\r\n" +
                            "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411);
    add("two Content-Lengths", "PUT " + s.write_path + " HTTP/1.1\r\n" + s.host + "Content-Type: application/json\r\n" +
                                   "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400);
    add("gzip body", "PUT " + s.write_path + " HTTP/1.1\r\n" + s.host + "Content-Type: application/json\r\n" +
                         "Content-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}", 415);
  }
  const AttackServer& r = servers[0];
  const AttackServer& c = servers[1];
  auto add = [&](const AttackServer& s, const std::string& what, std::string bytes, int expected) {
    cases.push_back({s.name + ": " + what, s.port, std::move(bytes), expected});
  };
  add(r, "an unknown state", attack_with_body(r, "PUT", r.write_path, json, R"({"state": "maybe"})"), 400);
  add(r, "DELETE a selection", "DELETE " + r.write_path + " HTTP/1.1\r\n" + r.host + "Content-Length: 0\r\n\r\n", 405);
  add(r, "POST /sheet.json", attack_with_body(r, "POST", "/sheet.json", json, "{}"), 405);
  add(r, "/files/../", "GET /files/../selections.json HTTP/1.1\r\n" + r.host + "\r\n", 400);
  add(r, "/files/ encoded ..", "GET /files/cells/%2e%2e/sheet.json HTTP/1.1\r\n" + r.host + "\r\n", 400);
  add(r, "/files/ not a PNG", "GET /files/sheet.json HTTP/1.1\r\n" + r.host + "\r\n", 403);
  add(c, "a caption text that is a number",
      attack_with_body(c, "PUT", "/api/caption", json, R"({"id": "0:)" + t.caption_image + R"(", "text": 3, "hash": ""})"), 400);
  add(c, "an unknown bulk op", attack_with_body(c, "POST", "/api/bulk", json, R"({"op": "shuffle", "ids": "all"})"), 400);
  add(c, "a broken regex",
      attack_with_body(c, "POST", "/api/bulk", json, R"({"op": "regex_replace", "find": "((", "ids": "all"})"), 400);
  add(c, "an undo of no list", attack_with_body(c, "POST", "/api/undo", json, R"({"runs": "x"})"), 400);
  add(c, "GET /api/caption", "GET /api/caption HTTP/1.1\r\n" + c.host + "\r\n", 405);
  add(c, "DELETE /api/images", "DELETE /api/images HTTP/1.1\r\n" + c.host + "Content-Length: 0\r\n\r\n", 405);
  add(c, "/files/0/../", "GET /files/0/../" + t.caption_image + " HTTP/1.1\r\n" + c.host + "\r\n", 400);
  add(c, "/thumbs/ encoded ..", "GET /thumbs/0/%2e%2e/" + t.caption_image + " HTTP/1.1\r\n" + c.host + "\r\n", 400);
  add(c, "/files/ no such image", "GET /files/0/nope.png HTTP/1.1\r\n" + c.host + "\r\n", 404);
  return cases;
}

// Counts one settled case: answered with `expected` (and a JSON error), another status, or nothing.
void attack_settle(const std::string& what, const LoadAnswer& a, int expected, AttackCounts& n, LoadProblems& problems) {
  if (a.status == expected) {
    const nlohmann::json body = nlohmann::json::parse(a.body, nullptr, false);
    if (body.is_object() && body.contains("error")) {
      ++n.answered;
      return;
    }
    ++n.wrong;
    problems.add(str_cat(what, ": the ", expected, " is not a JSON {\"error\"}: ", a.body.substr(0, 120)));
  } else if (a.status < 0) {
    ++n.hung;
    problems.add(str_cat(what, ": no answer (", a.error, ")"));
  } else {
    ++n.wrong;
    problems.add(str_cat(what, ": expected ", expected, ", got ", a.status, " ", a.body.substr(0, 120)));
  }
}

void attack_fast(const std::vector<AttackCase>& cases, AttackClock::time_point end, AttackCounts& n,
                 LoadProblems& problems) {
  for (size_t i = 0; AttackClock::now() < end; i = (i + 1) % cases.size()) {
    const AttackCase& c = cases[i];
    ++n.sent;
    LoadHttp http(c.port, kAttackAnswerTime);
    LoadAnswer a;
    if (http.open()) {
      http.send_all(c.bytes);  // the server may answer and close before taking all of a refused request
      a = http.read_answer(kAttackAnswerTime);
    } else {
      a.error = "cannot connect";
    }
    attack_settle(c.what, a, c.expected, n, problems);
    std::this_thread::sleep_for(milliseconds(20));  // ~50 a second: hostile, not a flood
  }
}

// `head` then `trickle` a byte a second until an answer or the connection's end; the answer must
// be `expected` within `bound` of the first byte.
void attack_trickle(const std::string& what, int port, const std::string& head, const std::string& trickle,
                    int expected, milliseconds bound, AttackCounts& n, LoadProblems& problems) {
  ++n.sent;
  LoadHttp http(port, bound);
  LoadAnswer a;
  const auto t0 = AttackClock::now();
  if (!http.open()) {
    a.error = "cannot connect";
    return attack_settle(what, a, expected, n, problems);
  }
  http.send_all(head);
  size_t i = 0;
  while (AttackClock::now() - t0 < bound) {
    if (i < trickle.size()) http.send_all(std::string(1, trickle[i++]));
    a = http.read_answer(milliseconds(1000));
    if (a.status > 0 || a.error.rfind("connection closed", 0) == 0) break;
  }
  attack_settle(what, a, expected, n, problems);
}

// Connections that never send: the server must close each after its keep-alive wait, unanswered.
void attack_idle(const std::string& what, int port, milliseconds bound, AttackCounts& n, LoadProblems& problems) {
  std::vector<std::unique_ptr<LoadHttp>> idle;
  for (int i = 0; i < 8; ++i) {
    ++n.sent;
    idle.push_back(std::make_unique<LoadHttp>(port, bound));
    if (!idle.back()->open()) {
      ++n.hung;
      problems.add(what + ": cannot connect");
      idle.pop_back();
    }
  }
  const auto until = AttackClock::now() + bound;
  for (auto& c : idle) {
    std::string received;
    const auto left = std::chrono::duration_cast<milliseconds>(until - AttackClock::now());
    if (!c->wait_closed(std::max(left, milliseconds(1)), &received)) {
      ++n.hung;
      problems.add(str_cat(what, ": still open ", bound.count(), " ms after connecting"));
    } else if (!received.empty()) {
      ++n.wrong;
      problems.add(what + ": answered a connection that sent nothing: " + received.substr(0, 80));
    } else {
      ++n.closed;
    }
  }
}

// One server's slow clients, one thread per kind, each started only while it can finish by `end`.
void attack_slow(const AttackTargets& t, bool review, AttackClock::time_point end, AttackCounts& n,
                 LoadProblems& problems) {
  const review::ServerLimits limits;
  const int port = review ? t.review_port : t.captions_port;
  const std::string name = review ? "review" : "captions";
  const std::string host = "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  const std::string put = "PUT " + (review ? "/api/selections/" + t.review_cell : std::string("/api/caption")) +
                          " HTTP/1.1\r\n" + host + "Content-Type: application/json\r\n";
  const auto left = [end] { return std::chrono::duration_cast<milliseconds>(end - AttackClock::now()); };
  std::vector<std::thread> kinds;
  kinds.emplace_back([&] {  // cut at the body deadline (30 s): once
    if (left() > limits.body_time)
      attack_trickle(name + ": a 1000-byte body a byte a second", port, put + "Content-Length: 1000\r\n\r\n",
                     std::string(1000, ' '), 400, limits.body_time + kAttackSlack, n, problems);
  });
  kinds.emplace_back([&] {  // cut at the header deadline (10 s)
    while (left() > limits.header_time)
      attack_trickle(name + ": headers a byte a second", port, "GET / HTTP/1.1\r\n" + host + "X-Slow: ",
                     std::string(1000, 'a'), 400, limits.header_time + kAttackSlack, n, problems);
  });
  kinds.emplace_back([&] {  // complete after ~2 s, then refused as not JSON
    while (left() > milliseconds(3000))
      attack_trickle(name + ": a bad 3-byte body a byte a second", port, put + "Content-Length: 3\r\n\r\n", "{x}", 400,
                     milliseconds(3000) + kAttackSlack, n, problems);
  });
  kinds.emplace_back([&] {  // closed after the keep-alive wait (2 s)
    while (left() > limits.keep_alive)
      attack_idle(name + ": a connection that never sends", port, limits.keep_alive + kAttackSlack, n, problems);
  });
  for (auto& k : kinds) k.join();
}

}  // namespace

void attack_servers(const AttackTargets& targets, AttackClock::time_point end, MalformedFigures& out,
                    LoadProblems& problems) {
  AttackCounts n;
  const std::vector<AttackCase> cases = attack_cases(targets);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { attack_fast(cases, end, n, problems); });
  threads.emplace_back([&] { attack_slow(targets, true, end, n, problems); });
  threads.emplace_back([&] { attack_slow(targets, false, end, n, problems); });
  for (auto& t : threads) t.join();
  out.sent = n.sent;
  out.answered_4xx = n.answered;
  out.closed_by_timeout = n.closed;
  out.wrong_status = n.wrong;
  out.hung = n.hung;
}

}  // namespace ls::test
