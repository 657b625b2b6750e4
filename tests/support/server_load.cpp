// The load test's run (server_load.h): both servers started in this process over the generated
// fixture, the clients, checkers, attacker and an RSS sampler on their own threads, then a last
// comparison of every file with what its owner was told.
#include "server_load.h"  // by its own folder: bench/bench_servers.cpp compiles this file without tests/ on its path

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "caption/caption_server.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "review/review_server.h"
#include "server_load_clients.h"

namespace ls::test {

namespace {

constexpr double kLoadBucketWidth = 1.02;  // 2% resolution
constexpr double kLoadBucketFloor = 1e-6;  // 1 us
constexpr size_t kLoadBuckets = 1047;      // log(1e9) / log(1.02): up to 1000 s
constexpr size_t kLoadProblemLines = 20;

ServerLoadFigures load_figures(const std::string& server, const LoadTally& t, double seconds) {
  ServerLoadFigures f;
  f.server = server;
  f.requests = t.requests;
  f.writes = t.writes;
  f.errors = t.errors;
  f.retries = t.retries;
  f.requests_per_s = seconds > 0 ? static_cast<double>(t.requests) / seconds : 0;
  f.p50_ms = t.latency.quantile_ms(0.50);
  f.p99_ms = t.latency.quantile_ms(0.99);
  f.max_ms = t.latency.max_ms();
  f.disk_checks = t.disk_checks;
  f.disk_invalid = t.disk_invalid;
  return f;
}

nlohmann::json load_server_json(const ServerLoadFigures& f) {
  return {{"requests", f.requests}, {"writes", f.writes},         {"errors", f.errors},
          {"retries", f.retries},   {"requests_per_s", f.requests_per_s}, {"p50_ms", f.p50_ms},
          {"p99_ms", f.p99_ms},     {"max_ms", f.max_ms},         {"disk_checks", f.disk_checks},
          {"disk_invalid", f.disk_invalid}};
}

// VmRSS every 250 ms while the load runs: the middle one and the largest.
class RssSampler {
 public:
  RssSampler(LoadClock::time_point middle) : middle_(middle), thread_([this] { sample(); }) {}
  ~RssSampler() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  long middle_kb() const { return middle_kb_; }
  long middle_heap_kb() const { return middle_heap_kb_; }
  long peak_kb() const { return peak_kb_; }

 private:
  void sample() {
    while (!stop_) {
      const long kb = vm_rss_kb();
      peak_kb_ = std::max(peak_kb_, kb);
      if (middle_kb_ == 0 && LoadClock::now() >= middle_) {
        middle_kb_ = kb;
        middle_heap_kb_ = heap_in_use_kb();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
  LoadClock::time_point middle_;
  std::atomic<bool> stop_{false};
  long middle_kb_ = 0, peak_kb_ = 0, middle_heap_kb_ = 0;
  std::thread thread_;
};

}  // namespace

LatencyHistogram::LatencyHistogram() : buckets_(kLoadBuckets, 0) {}

void LatencyHistogram::add(double seconds) {
  const double steps = seconds <= kLoadBucketFloor ? 0 : std::ceil(std::log(seconds / kLoadBucketFloor) / std::log(kLoadBucketWidth));
  ++buckets_[std::min(kLoadBuckets - 1, static_cast<size_t>(steps))];
  ++count_;
  max_ = std::max(max_, seconds);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kLoadBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

double LatencyHistogram::quantile_ms(double q) const {
  if (count_ == 0) return 0;
  const auto rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count_))));
  int64_t seen = 0;
  for (size_t i = 0; i < kLoadBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return 1e3 * std::min(max_, kLoadBucketFloor * std::pow(kLoadBucketWidth, static_cast<double>(i)));
  }
  return max_ms();
}

void LoadProblems::add(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++total_;
  if (lines_.size() < kLoadProblemLines) lines_.push_back(line);
}

std::vector<std::string> LoadProblems::lines() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lines_;
}

int64_t LoadProblems::total() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return total_;
}

long heap_in_use_kb() {
  const struct mallinfo2 m = ::mallinfo2();
  return static_cast<long>((m.uordblks + m.hblkhd) / 1024);
}

long vm_rss_kb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

LoadReport run_server_load(const LoadOptions& o) {
  LS_CHECK(o.clients >= 1 && o.seconds > 0, "server load: clients and seconds must be positive, got ", o.clients, ", ",
           o.seconds);
  LS_CHECK(!o.work_dir.empty(), "server load: no work_dir given");
  LoadProblems problems;
  const LoadFixture fixture = make_load_fixture(o.work_dir, o.clients, o.seed);
  review::ReviewServer review_server(fixture.sheet_dir);
  review_server.bind(0);
  review_server.start();
  caption::CaptionServerOptions co;
  co.source = fixture.dataset_dir.string();
  co.show_progress = false;
  caption::CaptionServer caption_server(co);
  caption_server.bind(0);
  caption_server.start();

  LoadShared shared(o, fixture, problems);
  shared.review_port = review_server.port();
  shared.captions_port = caption_server.port();
  for (const auto& [image, text] : fixture.first_caption) shared.allow_caption(image, text);
  std::vector<std::unique_ptr<ReviewLoadClient>> reviewers;
  std::vector<std::unique_ptr<CaptionLoadClient>> editors;
  for (int c = 0; c < o.clients; ++c) {
    reviewers.push_back(std::make_unique<ReviewLoadClient>(shared, c));
    editors.push_back(std::make_unique<CaptionLoadClient>(shared, c));
  }

  LoadReport report;
  report.rss_start_kb = vm_rss_kb();
  report.heap_start_kb = heap_in_use_kb();
  const auto start = LoadClock::now();
  const auto length = std::chrono::duration_cast<LoadClock::duration>(std::chrono::duration<double>(o.seconds));
  shared.end = start + length;
  RssSampler rss(start + length / 2);
  LoadTally selections_check, captions_check;
  std::vector<std::thread> checkers, clients;
  checkers.emplace_back([&] { selections_check = check_selections_file(shared); });
  checkers.emplace_back([&] { captions_check = check_caption_files(shared); });
  std::thread attacker;
  if (o.attack) {
    AttackTargets targets{shared.review_port, shared.captions_port, load_cell_id(0, 0), load_image_name(0, 0)};
    attacker = std::thread([&, targets] { attack_servers(targets, shared.end, report.malformed, problems); });
  }
  for (auto& r : reviewers) clients.emplace_back([&r] { r->run(); });
  for (auto& e : editors) clients.emplace_back([&e] { e->run(); });
  for (auto& t : clients) t.join();
  report.seconds = std::chrono::duration<double>(LoadClock::now() - start).count();
  if (attacker.joinable()) attacker.join();
  shared.stop_checkers = true;
  for (auto& t : checkers) t.join();
  report.rss_end_kb = vm_rss_kb();
  report.heap_end_kb = heap_in_use_kb();
  rss.finish();
  report.rss_mid_kb = rss.middle_kb() ? rss.middle_kb() : report.rss_end_kb;
  report.heap_mid_kb = rss.middle_kb() ? rss.middle_heap_kb() : report.heap_end_kb;
  report.rss_peak_kb = std::max({rss.peak_kb(), report.rss_start_kb, report.rss_end_kb});

  // The last word: the files hold what every client was last told, and nothing else.
  LoadTally review_tally = selections_check, captions_tally = captions_check;
  std::string selections;
  try {
    selections = core::read_file(fixture.sheet_dir / "selections.json");
  } catch (const Error&) {
  }
  const auto doc = nlohmann::json::parse(selections, nullptr, false);
  size_t acknowledged = 0;
  for (const auto& r : reviewers) {
    review_tally.merge(r->tally());
    acknowledged += r->acknowledged().size();
    if (const std::string wrong = r->compare(doc); !wrong.empty()) problems.add("selections.json at the end: " + wrong);
  }
  if (doc.is_object() && doc.contains("cells") && doc["cells"].size() != acknowledged)
    problems.add(str_cat("selections.json at the end: ", doc["cells"].size(), " cells, ", acknowledged, " acknowledged"));
  for (const auto& e : editors) {
    captions_tally.merge(e->tally());
    if (const std::string wrong = e->compare_disk(); !wrong.empty()) problems.add("captions at the end: " + wrong);
  }
  review_server.stop();
  caption_server.stop();
  report.review = load_figures("review", review_tally, report.seconds);
  report.captions = load_figures("captions", captions_tally, report.seconds);
  report.problems = problems.lines();
  report.problem_count = problems.total();
  return report;
}

std::vector<std::string> load_failures(const LoadReport& r, const LoadBounds& bounds) {
  std::vector<std::string> out;
  for (const ServerLoadFigures* f : {&r.review, &r.captions}) {
    if (f->requests == 0) out.push_back(f->server + ": no request made");
    if (f->errors > 0) out.push_back(str_cat(f->server, ": ", f->errors, " failed requests"));
    if (f->disk_invalid > 0) out.push_back(str_cat(f->server, ": ", f->disk_invalid, " reads of a written file found it wrong"));
    if (f->p99_ms > bounds.max_p99_ms)
      out.push_back(str_cat(f->server, ": p99 ", f->p99_ms, " ms over the bound of ", bounds.max_p99_ms, " ms"));
  }
  const MalformedFigures& m = r.malformed;
  if (m.wrong_status > 0 || m.hung > 0)
    out.push_back(str_cat("malformed requests: ", m.wrong_status, " got another status, ", m.hung, " no answer"));
  const double rss_mb = static_cast<double>(r.rss_end_kb - r.rss_mid_kb) / 1024.0;
  if (rss_mb > bounds.max_rss_growth_mb)
    out.push_back(str_cat("RSS grew ", rss_mb, " MiB in the second half, over the bound of ", bounds.max_rss_growth_mb, " MiB"));
  const double heap_mb = static_cast<double>(r.heap_end_kb - r.heap_mid_kb) / 1024.0;
  if (heap_mb > bounds.max_heap_growth_mb)
    out.push_back(str_cat("the heap in use grew ", heap_mb, " MiB in the second half, over the bound of ",
                          bounds.max_heap_growth_mb, " MiB"));
  if (r.problem_count > 0 && out.empty()) out.push_back(str_cat(r.problem_count, " problems (see the list)"));
  return out;
}

nlohmann::json load_report_json(const LoadReport& r) {
  const MalformedFigures& m = r.malformed;
  return {{"seconds", r.seconds},
          {"review", load_server_json(r.review)},
          {"captions", load_server_json(r.captions)},
          {"malformed", {{"sent", m.sent}, {"answered_4xx", m.answered_4xx}, {"closed_by_timeout", m.closed_by_timeout},
                         {"wrong_status", m.wrong_status}, {"hung", m.hung}}},
          {"rss_kb", {{"start", r.rss_start_kb}, {"middle", r.rss_mid_kb}, {"end", r.rss_end_kb}, {"peak", r.rss_peak_kb}}},
          {"heap_in_use_kb", {{"start", r.heap_start_kb}, {"middle", r.heap_mid_kb}, {"end", r.heap_end_kb}}},
          {"problem_count", r.problem_count},
          {"problems", r.problems}};
}

}  // namespace ls::test
