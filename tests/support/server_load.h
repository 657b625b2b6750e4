// A load test of the two local servers (review/review_server, caption/caption_server), both
// started in this process on 127.0.0.1 over a generated sheet folder and caption dataset: N
// clients per server, each on its own kept-alive connection, make the pages' mix of reads and
// writes for T seconds; every write is read back from disk (selections.json must parse and hold
// the client's acknowledged picks; a caption file must hold the text last saved), checker
// threads read the files meanwhile, and attacker threads send malformed and slow requests, each
// of which must get its 4xx (or be closed at the server's time limit). Shared by
// bench/bench_servers (full size) and tests/caption/test_caption_server_load.cpp (short); no
// gtest here.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ls::test {

struct LoadOptions {
  int clients = 50;                // per server
  double seconds = 60;
  std::filesystem::path work_dir;  // the sheet folder and the dataset are made under it
  bool attack = true;              // the malformed-request threads
  uint64_t seed = 1;
  /// How long one request may take before it counts as an error (a blocked client).
  std::chrono::milliseconds request_timeout{10000};
};

/// Latencies in fixed log-spaced buckets, each 2% wide from 1 us to 1000 s, so the memory a run
/// takes does not grow with its length; a quantile is the upper edge of its bucket.
class LatencyHistogram {
 public:
  LatencyHistogram();
  void add(double seconds);
  void merge(const LatencyHistogram& other);
  int64_t count() const { return count_; }
  double quantile_ms(double q) const;
  double max_ms() const { return 1e3 * max_; }

 private:
  std::vector<int64_t> buckets_;
  int64_t count_ = 0;
  double max_ = 0;
};

struct ServerLoadFigures {
  std::string server;  // "review", "captions"
  int64_t requests = 0, writes = 0, errors = 0, retries = 0;
  double requests_per_s = 0, p50_ms = 0, p99_ms = 0, max_ms = 0;
  int64_t disk_checks = 0, disk_invalid = 0;  // written files read back (by the writer and a checker)
};

struct MalformedFigures {
  int64_t sent = 0;
  int64_t answered_4xx = 0;       // with the status the case expects
  int64_t closed_by_timeout = 0;  // connections that never sent a byte, closed by the server
  int64_t wrong_status = 0;       // any other status (2xx, 5xx, another 4xx)
  int64_t hung = 0;               // neither answered nor closed within the case's bound
};

/// The first failures, one line each, and how many there were.
class LoadProblems {
 public:
  void add(const std::string& line);
  std::vector<std::string> lines() const;
  int64_t total() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
  int64_t total_ = 0;
};

struct LoadReport {
  ServerLoadFigures review, captions;
  MalformedFigures malformed;
  double seconds = 0;  // the load as it ran, start to the last client's end
  // This process's VmRSS (servers and clients), KiB: before the load, at its middle, after it,
  // and the most seen (sampled every 250 ms).
  long rss_start_kb = 0, rss_mid_kb = 0, rss_end_kb = 0, rss_peak_kb = 0;
  // What malloc has handed out and not been given back (glibc mallinfo2), KiB, at the same
  // moments: it grows with a leak; RSS also grows with fragmentation and stacks.
  long heap_start_kb = 0, heap_mid_kb = 0, heap_end_kb = 0;
  std::vector<std::string> problems;
  int64_t problem_count = 0;
};

LoadReport run_server_load(const LoadOptions& options);

/// What a run must stay under besides "no error". The clients wait for nothing between requests,
/// so a latency is mostly queueing (Little's law: clients / throughput, ~0.5 s for 50 caption
/// clients on a busy 2-core machine) and no absolute bound fits every machine; 5 s is far over
/// that and far under what a client stuck behind a slow one would wait (the 10 s header and 30 s
/// body deadlines). Memory, from the middle of the run to its end: the heap in use is what a leak
/// grows — 16 MiB is ~600 bytes a request of a 60 s run's second half (~25,000 requests), where
/// it moved by -1 to +6 MiB; RSS also grows with what glibc's per-thread arenas keep after a free
/// (measured over a 60 s run's second half, one client a server and the attacker: +45 MiB, and
/// +2.6 MiB with GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=131072;
/// the heap in use flat in both), so its bound is looser.
struct LoadBounds {
  double max_p99_ms = 5000;
  double max_heap_growth_mb = 16;
  double max_rss_growth_mb = 128;
};
/// Every way the run failed, one line each: a failed request, a wrong file on disk, a malformed
/// request answered otherwise than with its 4xx or not at all, a p99 or memory growth over `bounds`.
std::vector<std::string> load_failures(const LoadReport& report, const LoadBounds& bounds);

/// The report as one JSON object (bench_servers --json).
nlohmann::json load_report_json(const LoadReport& report);

/// VmRSS of /proc/self/status, KiB; 0 when unreadable.
long vm_rss_kb();
/// Bytes malloc has handed out and not been given back, KiB (glibc mallinfo2).
long heap_in_use_kb();

/// Where the attacker threads aim: both servers' ports, a cell of the sheet, an image id.
struct AttackTargets {
  int review_port = 0, captions_port = 0;
  std::string review_cell, caption_image;  // "0123456789abcdef", "c00_0.png"
};
/// Sends malformed requests to both servers until `end` (slow ones only when they can finish by
/// then), counting answers into `out`; returns when every case it started is settled.
void attack_servers(const AttackTargets& targets, std::chrono::steady_clock::time_point end, MalformedFigures& out,
                    LoadProblems& problems);

}  // namespace ls::test
