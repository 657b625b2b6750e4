// The load test's clients (server_load.h): what each page's user does, and the checker threads
// that read the written files while they do it. Internal to server_load*.cpp.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "load_http.h"
#include "server_load.h"

namespace ls::test {

using LoadClock = std::chrono::steady_clock;

/// The generated sheet folder and caption dataset: client c owns cells load_cell_id(c, 0..3) and
/// images load_image_name(c, 0..1), which no other client writes, so after each acknowledged
/// write the client knows exactly what the files on disk must hold.
struct LoadFixture {
  static constexpr int kCellsPerClient = 4;
  static constexpr int kImagesPerClient = 2;
  std::filesystem::path sheet_dir, dataset_dir;
  int clients = 0;
  std::vector<std::string> cells;             // every cell id
  std::map<std::string, size_t> cell_bytes;   // cell id -> its PNG's size
  std::vector<std::string> images;            // every image, relative to dataset_dir
  std::map<std::string, size_t> image_bytes;
  std::map<std::string, std::string> first_caption;  // image -> its caption when made
};

std::string load_cell_id(int client, int k);
std::string load_image_name(int client, int j);
/// image "c00_0.png" -> its caption file.
std::filesystem::path load_caption_file(const LoadFixture& f, const std::string& image);
LoadFixture make_load_fixture(const std::filesystem::path& work_dir, int clients, uint64_t seed);

/// What one thread counted (merged into ServerLoadFigures at the end).
struct LoadTally {
  LatencyHistogram latency;
  int64_t requests = 0, writes = 0, errors = 0, retries = 0, disk_checks = 0, disk_invalid = 0;
  void merge(const LoadTally& o);
};

/// What every client and checker reads, plus the caption texts each image was ever sent (their
/// hashes), so a checker can tell a file written by the server from a corrupt one.
struct LoadShared {
  LoadShared(const LoadOptions& o, const LoadFixture& f, LoadProblems& p) : options(o), fixture(f), problems(p) {}
  const LoadOptions& options;
  const LoadFixture& fixture;
  LoadProblems& problems;
  int review_port = 0, captions_port = 0;
  LoadClock::time_point end{};
  std::atomic<bool> stop_checkers{false};

  void allow_caption(const std::string& image, const std::string& text);
  bool caption_allowed(const std::string& image, const std::string& text) const;

 private:
  mutable std::mutex texts_mutex_;
  std::map<std::string, std::set<size_t>> texts_;
};

class LoadClient {
 public:
  LoadClient(LoadShared& shared, int port, const char* server, int index);
  virtual ~LoadClient() = default;
  /// Makes requests until shared.end.
  void run();
  const LoadTally& tally() const { return tally_; }

 protected:
  virtual void step() = 0;
  /// One timed request.
  LoadAnswer call(const std::string& method, const std::string& target, const std::string& body = "");
  /// True when `a` has `status`; else counts an error naming `what`.
  bool expect(const LoadAnswer& a, const std::string& what, int status = 200);
  /// The answer's JSON (discarded, and an error counted, when it is not JSON).
  nlohmann::json parse(const LoadAnswer& a, const std::string& what);
  void fail(const std::string& why);
  size_t pick(size_t n) { return static_cast<size_t>(rng_() % n); }

  LoadShared& s_;
  LoadTally tally_;
  int64_t seq_ = 0;
  const int index_;

 private:
  LoadHttp http_;
  std::mt19937_64 rng_;
  const char* server_;
};

/// The review page's user: the page, cell PNGs, the selections, sheet.json, the summary, and
/// picks / rejections / notes on its own cells (PUT or POST), each read back from selections.json.
class ReviewLoadClient final : public LoadClient {
 public:
  ReviewLoadClient(LoadShared& shared, int index);
  /// Compares the client's acknowledged picks with a selections document; "" when they match.
  std::string compare(const nlohmann::json& doc) const;
  const std::map<std::string, nlohmann::json>& acknowledged() const { return mine_; }

 private:
  void step() override;
  void write();
  std::map<std::string, nlohmann::json> mine_;  // own cell -> {"state", "note"} acknowledged
};

/// The caption editor's user: the image list, thumbnails, images, tags, history, token counts,
/// caption saves on its own images, and bulk changes (preview, apply, sometimes undo) on them.
class CaptionLoadClient final : public LoadClient {
 public:
  CaptionLoadClient(LoadShared& shared, int index);
  /// "" when every own caption file holds the text last acknowledged.
  std::string compare_disk() const;

 private:
  void step() override;
  void list_images();
  void save_caption();
  void bulk();
  void check_disk(const std::string& image, const std::string& what);
  void resync();
  std::map<std::string, std::string> expected_;  // own image -> its caption as last acknowledged
};

/// Reads selections.json (review) or every caption file (captions) until shared.stop_checkers:
/// each read must parse / be a text some client sent.
LoadTally check_selections_file(LoadShared& shared);
LoadTally check_caption_files(LoadShared& shared);

}  // namespace ls::test
