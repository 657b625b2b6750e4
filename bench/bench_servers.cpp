// Load test of the two local servers, `review` and `captions` (docs/sheet.md "What the local
// servers accept"): both started in this process on 127.0.0.1 (ephemeral ports) over a generated
// sheet folder (4 cells a client) and caption dataset (2 images a client); CLIENTS clients per
// server on kept-alive connections make the pages' mix of reads and writes for SECONDS seconds,
// each write read back from disk; an attacker sends malformed and slow requests meanwhile. The
// generator is tests/support/server_load*.cpp, shared with the ctest variant
// (tests/caption/test_caption_server_load.cpp).
//
//   bench_servers [--clients 50] [--seconds 60] [--json FILE] [--max-p99-ms 5000]
//                 [--max-heap-growth-mb 16] [--max-rss-growth-mb 128] [--seed 1] [--no-attack]
//
// One line per figure. Exit 1 when a request failed, a file on disk was ever wrong, a malformed
// request got anything but its 4xx (or hung), p99 passed --max-p99-ms, or the heap in use or
// VmRSS grew more than --max-heap-growth-mb / --max-rss-growth-mb from the middle of the run to
// its end (the reasoning behind the defaults is at LoadBounds, tests/support/server_load.h);
// the reasons go to stderr. --no-attack runs the
// clients alone: the baseline that shows what the attacker costs them.
// bench-sources: tests/support/load_http.cpp tests/support/server_load.cpp
// bench-sources: tests/support/server_load_attack.cpp tests/support/server_load_clients.cpp
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bench_common.h"
#include "core/error.h"
#include "support/server_load.h"

int main(int argc, char** argv) {
  return ls::bench::run_main([&] {
    namespace fs = std::filesystem;
    const ls::bench::Args args(argc, argv, {"clients", "seconds", "json", "max-p99-ms", "max-heap-growth-mb", "max-rss-growth-mb", "seed"},
                               {"no-attack"});
    ls::test::LoadOptions o;
    o.clients = static_cast<int>(args.integer("clients", 50));
    o.seconds = static_cast<double>(args.integer("seconds", 60));
    o.seed = static_cast<uint64_t>(args.integer("seed", 1, 0));
    o.attack = !args.has("no-attack");
    ls::test::LoadBounds bounds;
    bounds.max_p99_ms = static_cast<double>(args.integer("max-p99-ms", 5000));
    bounds.max_heap_growth_mb = static_cast<double>(args.integer("max-heap-growth-mb", 16, 0));
    bounds.max_rss_growth_mb = static_cast<double>(args.integer("max-rss-growth-mb", 128, 0));
    o.work_dir = fs::temp_directory_path() / ("lorastudio_bench_servers_" + std::to_string(::getpid()));
    fs::remove_all(o.work_dir);

    const ls::test::LoadReport r = ls::test::run_server_load(o);
    fs::remove_all(o.work_dir);

    using ls::bench::print_figure;
    print_figure("servers_clients_per_server", o.clients, 0);
    print_figure("servers_seconds", r.seconds, 1);
    for (const ls::test::ServerLoadFigures* f : {&r.review, &r.captions}) {
      print_figure(f->server + "_requests", static_cast<double>(f->requests), 0);
      print_figure(f->server + "_writes", static_cast<double>(f->writes), 0);
      print_figure(f->server + "_requests_per_s", f->requests_per_s, 1);
      print_figure(f->server + "_p50_ms", f->p50_ms, 2);
      print_figure(f->server + "_p99_ms", f->p99_ms, 2);
      print_figure(f->server + "_max_ms", f->max_ms, 2);
      print_figure(f->server + "_errors", static_cast<double>(f->errors), 0);
      print_figure(f->server + "_keepalive_retries", static_cast<double>(f->retries), 0);
      print_figure(f->server + "_disk_checks", static_cast<double>(f->disk_checks), 0);
      print_figure(f->server + "_disk_invalid", static_cast<double>(f->disk_invalid), 0);
    }
    const ls::test::MalformedFigures& m = r.malformed;
    print_figure("malformed_sent", static_cast<double>(m.sent), 0);
    print_figure("malformed_answered_4xx", static_cast<double>(m.answered_4xx), 0);
    print_figure("malformed_closed_by_timeout", static_cast<double>(m.closed_by_timeout), 0);
    print_figure("malformed_wrong_status", static_cast<double>(m.wrong_status), 0);
    print_figure("malformed_hung", static_cast<double>(m.hung), 0);
    print_figure("rss_start_mb", r.rss_start_kb / 1024.0, 1);
    print_figure("rss_mid_mb", r.rss_mid_kb / 1024.0, 1);
    print_figure("rss_end_mb", r.rss_end_kb / 1024.0, 1);
    print_figure("rss_peak_mb", r.rss_peak_kb / 1024.0, 1);
    print_figure("rss_growth_mid_to_end_mb", (r.rss_end_kb - r.rss_mid_kb) / 1024.0, 1);
    print_figure("heap_in_use_start_mb", r.heap_start_kb / 1024.0, 1);
    print_figure("heap_in_use_mid_mb", r.heap_mid_kb / 1024.0, 1);
    print_figure("heap_in_use_end_mb", r.heap_end_kb / 1024.0, 1);
    print_figure("heap_growth_mid_to_end_mb", (r.heap_end_kb - r.heap_mid_kb) / 1024.0, 1);

    if (args.has("json")) {
      nlohmann::json log = ls::test::load_report_json(r);
      log["clients_per_server"] = o.clients;
      log["bounds"] = {{"max_p99_ms", bounds.max_p99_ms},
                       {"max_heap_growth_mb", bounds.max_heap_growth_mb},
                       {"max_rss_growth_mb", bounds.max_rss_growth_mb}};
      std::ofstream(args.text("json", "")) << log.dump(2) << "\n";
    }
    const std::vector<std::string> failures = ls::test::load_failures(r, bounds);
    for (const auto& line : failures) std::fprintf(stderr, "FAIL %s\n", line.c_str());
    for (const auto& line : r.problems) std::fprintf(stderr, "  %s\n", line.c_str());
    return failures.empty() ? 0 : 1;
  });
}
