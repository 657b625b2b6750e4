// The caption editor's routes (docs/captions.md). Every read and write goes through the caption
// store of the folder an image belongs to, so the editor's changes land in the same backups and
// history as the tagger's; image bytes are served only for files the store lists, after their
// links are resolved inside the folder.
#include "caption/caption_server.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <system_error>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "caption/caption_history.h"
#include "caption/caption_doctor.h"
#include "caption/caption_page.h"
#include "caption/caption_requests.h"
#include "caption/caption_store.h"
#include "caption/tag_probs.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/strings.h"
#include "data/dataset_config.h"
#include "io/image.h"
#include "review/local_server.h"
#include "text/clip_tokenizer.h"

namespace ls::caption {

namespace fs = std::filesystem;
using review::send_error;
using review::send_json;

namespace {

constexpr int kThumbnailSide = 256;
constexpr size_t kThumbnailCacheBytes = size_t(256) << 20;
constexpr int64_t kTokenLimits[] = {75, 225};  // one CLIP window; kohya's max_token_length 225

struct CaptionRoot {
  std::unique_ptr<CaptionStore> store;
  std::map<std::string, DoctorNote> doctor;  // by image
  // tag_probs.jsonl's images, re-read when the file changes (it may be large).
  std::set<std::string> probs;
  fs::file_time_type probs_time{};
  uintmax_t probs_size = 0;
  bool probs_read = false;
};

struct Thumbnail {
  fs::file_time_type time{};
  uintmax_t size = 0;
  std::string jpeg;
};

const char* image_mime(const fs::path& file) {
  const std::string ext = core::ascii_lower(file.extension().string());
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  if (ext == ".webp") return "image/webp";
  if (ext == ".bmp") return "image/bmp";
  return "application/octet-stream";
}

std::string image_id(size_t root, const std::string& image) { return std::to_string(root) + ":" + image; }

review::ServerLimits caption_server_limits() {
  review::ServerLimits limits;
  limits.max_body = size_t(8) << 20;  // the ids of a large bulk change
  return limits;
}

}  // namespace

struct CaptionServer::State {
  CaptionServerOptions options;
  std::vector<CaptionRoot> roots;
  std::optional<text::ClipTokenizer> tokenizer;
  std::mutex mutex;  // httplib answers on a thread pool; the stores and caches are not thread-safe
  std::mutex thumbnail_mutex;
  std::map<std::string, Thumbnail> thumbnails;
  size_t thumbnail_bytes = 0;

  // "ROOT:PATH" -> (root, image); none when it names no image of the dataset.
  std::optional<std::pair<size_t, std::string>> find(const std::string& id) const {
    auto parsed = parse_image_id(id);
    if (!parsed) return std::nullopt;
    auto& [root, image] = *parsed;
    if (root >= roots.size() || !roots[root].store->has_image(image)) return std::nullopt;
    return parsed;
  }

  const std::set<std::string>& probs_of(size_t r) {
    CaptionRoot& root = roots[r];
    const fs::path file = tag_probs_path(root.store->dir());
    std::error_code ec;
    auto time = fs::last_write_time(file, ec);
    uintmax_t size = ec ? 0 : fs::file_size(file, ec);
    if (ec) {
      root.probs.clear();
      root.probs_read = true;
      return root.probs;
    }
    if (!root.probs_read || time != root.probs_time || size != root.probs_size) {
      auto images = root.store->images_with_probs();
      root.probs = std::set<std::string>(images.begin(), images.end());
      root.probs_time = time;
      root.probs_size = size;
      root.probs_read = true;
    }
    return root.probs;
  }

  // `probs`: probs_of(r), asked once per answer (it checks the file on disk).
  nlohmann::json entry_json(size_t r, const CaptionEntry& e, const std::set<std::string>& probs) {
    const CaptionRoot& root = roots[r];
    nlohmann::json j = {{"id", image_id(r, e.image)}, {"root", r}, {"image", e.image}, {"caption_path", e.caption_path}};
    j["text"] = e.text ? nlohmann::json(*e.text) : nlohmann::json(nullptr);
    j["hash"] = e.hash;
    j["tags"] = e.tags;
    j["tokens"] = tokenizer && e.text ? nlohmann::json(tokenizer->encode(*e.text).size()) : nlohmann::json(nullptr);
    j["missing"] = e.missing;
    j["empty"] = e.empty;
    j["duplicate"] = e.duplicate;
    auto it = root.doctor.find(e.image);
    std::vector<std::string> problems = it == root.doctor.end() ? std::vector<std::string>{} : it->second.problems;
    if (e.outside) problems.push_back(e.caption_path + ": the image or its caption links outside the dataset folder; "
                                      "the editor neither reads nor writes it");
    j["refused"] = e.outside || (it != root.doctor.end() && it->second.refused);
    j["problems"] = problems;
    j["width"] = it == root.doctor.end() ? 0 : it->second.width;
    j["height"] = it == root.doctor.end() ? 0 : it->second.height;
    j["probs"] = probs.count(e.image) > 0;
    return j;
  }

  // The current record of one image (after a save or a conflict).
  nlohmann::json entry_json(size_t r, const std::string& image) {
    for (const auto& e : roots[r].store->entries())
      if (e.image == image) return entry_json(r, e, probs_of(r));
    LS_FAIL("no image '", image, "'");
  }
};

CaptionServer::CaptionServer(const CaptionServerOptions& options)
    : state_(std::make_unique<State>()),
      server_(std::make_unique<review::LocalServer>("captions", caption_server_limits())) {
  State& s = *state_;
  s.options = options;
  std::error_code ec;
  if (fs::is_directory(options.source, ec)) {
    s.roots.emplace_back();
    s.roots.back().store = std::make_unique<CaptionStore>(options.source, options.caption_extension, options.recursive);
  } else {
    LS_CHECK(fs::is_regular_file(options.source, ec), options.source,
             ": no such folder or dataset TOML; pass the folder of images or a kohya dataset .toml");
    const data::DataConfig config = data::load_dataset_toml(options.source);
    std::set<std::string> seen;  // two datasets may share a folder: one editor view of it
    for (const auto& dataset : config.datasets) {
      for (const auto& subset : dataset.subsets) {
        const std::string key = fs::weakly_canonical(subset.image_dir, ec).string() + "|" + subset.caption_extension;
        if (!seen.insert(key).second) continue;
        s.roots.emplace_back();
        s.roots.back().store = std::make_unique<CaptionStore>(subset.image_dir, subset.caption_extension, false);
      }
    }
    LS_CHECK(!s.roots.empty(), options.source, ": names no subsets; add [[datasets.subsets]] with an image_dir");
  }
  if (!options.tokenizer.empty()) s.tokenizer = text::ClipTokenizer::from_file(options.tokenizer);
  for (auto& root : s.roots) root.doctor = run_doctor(*root.store, options.show_progress);
  add_routes();
}

CaptionServer::~CaptionServer() { stop(); }

int CaptionServer::bind(int port) { return server_->bind(port); }
void CaptionServer::serve() { server_->serve(); }
void CaptionServer::start() { server_->start(); }
void CaptionServer::stop() { server_->stop(); }
int CaptionServer::port() const { return server_->port(); }
std::string CaptionServer::url() const { return server_->url(); }

size_t CaptionServer::image_count() const {
  size_t n = 0;
  for (const auto& root : state_->roots) n += root.store->images().size();
  return n;
}

void CaptionServer::add_routes() {
  auto& http = *server_;
  http.route("GET", "/", [this](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(state_->options.web_dir.empty() ? captions_page_html() : captions_page_html(state_->options.web_dir),
                    "text/html; charset=utf-8");
  });
  http.route("GET", "/api/images", [this](const httplib::Request&, httplib::Response& res) { list_images(res); });
  http.route("GET", "/api/tags", [this](const httplib::Request&, httplib::Response& res) { list_tags(res); });
  http.route("POST", "/api/tokens", [this](const httplib::Request& req, httplib::Response& res) { count_tokens(req, res); });
  http.route("PUT", "/api/caption", [this](const httplib::Request& req, httplib::Response& res) { put_caption(req, res); });
  http.route("POST", "/api/bulk", [this](const httplib::Request& req, httplib::Response& res) { bulk(req, res); });
  http.route("GET", "/api/history", [this](const httplib::Request&, httplib::Response& res) { history(res); });
  http.route("POST", "/api/undo", [this](const httplib::Request& req, httplib::Response& res) { undo(req, res); });
  http.route("GET", R"(/files/.*)", [this](const httplib::Request& req, httplib::Response& res) { send_image(req, res, false); });
  http.route("GET", R"(/thumbs/.*)", [this](const httplib::Request& req, httplib::Response& res) { send_image(req, res, true); });
}

void CaptionServer::list_images(httplib::Response& res) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  nlohmann::json roots = nlohmann::json::array(), images = nlohmann::json::array();
  for (size_t r = 0; r < s.roots.size(); ++r) {
    const CaptionStore& store = *s.roots[r].store;
    roots.push_back({{"root", r},
                     {"dir", store.dir().string()},
                     {"caption_extension", store.caption_extension()},
                     {"has_probs", !s.probs_of(r).empty()}});
    const std::set<std::string>& probs = s.probs_of(r);
    for (const auto& e : store.entries()) images.push_back(s.entry_json(r, e, probs));
  }
  send_json(res, {{"source", s.options.source},
                  {"roots", roots},
                  {"tokenizer", s.tokenizer.has_value()},
                  {"token_limits", kTokenLimits},
                  {"images", images}});
}

void CaptionServer::list_tags(httplib::Response& res) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  std::map<std::string, int64_t> counts;
  size_t images = 0;
  for (const auto& root : s.roots) {
    images += root.store->images().size();
    for (const auto& [tag, n] : root.store->tag_counts()) counts[tag] += n;
  }
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  nlohmann::json tags = nlohmann::json::array();
  for (const auto& [tag, n] : sorted) tags.push_back({{"tag", tag}, {"count", n}});
  send_json(res, {{"images", images}, {"tags", tags}});
}

void CaptionServer::count_tokens(const httplib::Request& req, httplib::Response& res) {
  nlohmann::json body;
  if (!review::json_object_body(req, res, body)) return;
  if (!body.contains("text") || !body["text"].is_string()) return send_error(res, 400, "send {\"text\": \"...\"}");
  const auto& tokenizer = state_->tokenizer;  // thread-safe; set once before serving
  send_json(res, {{"tokens", tokenizer ? nlohmann::json(tokenizer->encode(body["text"].get<std::string>()).size())
                                       : nlohmann::json(nullptr)}});
}

void CaptionServer::put_caption(const httplib::Request& req, httplib::Response& res) {
  nlohmann::json body;
  if (!review::json_object_body(req, res, body)) return;
  CaptionEdit edit;
  if (const std::string refused = parse_caption_edit(body, edit); !refused.empty()) return send_error(res, 400, refused);
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  auto found = s.find(edit.id);
  if (!found) return send_error(res, 404, "no image '" + edit.id + "' in this dataset");
  const auto& [r, image] = *found;
  SaveResult saved;
  try {
    saved = s.roots[r].store->save(image, edit.text, edit.hash);
  } catch (const Error& e) {
    return send_error(res, 403, e.what());
  }
  if (!saved.conflict.empty()) {
    return send_json(res,
                     {{"error", saved.conflict},
                      {"on_disk", saved.on_disk ? nlohmann::json(*saved.on_disk) : nlohmann::json(nullptr)},
                      {"image", s.entry_json(r, image)}},
                     409);
  }
  nlohmann::json run = saved.run.empty() ? nlohmann::json(nullptr) : nlohmann::json({{"root", r}, {"run", saved.run}});
  send_json(res, {{"saved", saved.saved}, {"run", run}, {"image", s.entry_json(r, image)}});
}

void CaptionServer::bulk(const httplib::Request& req, httplib::Response& res) {
  nlohmann::json body;
  if (!review::json_object_body(req, res, body)) return;
  BulkRequest request;
  if (const std::string refused = parse_bulk_request(body, request); !refused.empty()) return send_error(res, 400, refused);
  const BulkOp& op = request.op;
  const bool preview = request.preview;
  const auto& ids = request.ids;
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  // Ids grouped per folder; every one checked before anything changes.
  std::vector<std::optional<std::vector<std::string>>> per_root(s.roots.size());
  if (ids) {
    for (const auto& id : *ids) {
      auto found = s.find(id);
      if (!found) return send_error(res, 404, "no image '" + id + "' in this dataset");
      auto& list = per_root[found->first];
      if (!list) list.emplace();
      list->push_back(found->second);
    }
  } else {
    for (auto& list : per_root) list.emplace();  // empty = every image of the folder
  }
  nlohmann::json changed = nlohmann::json::array(), runs = nlohmann::json::array(), texts = nlohmann::json::object();
  try {
    for (size_t r = 0; r < s.roots.size(); ++r) {
      if (!per_root[r]) continue;  // no image of this folder named
      if (op.kind == BulkKind::kRetag && s.probs_of(r).empty()) continue;
      std::vector<BulkChange> changes;
      std::string run;
      if (preview) {
        changes = s.roots[r].store->preview(op, *per_root[r]);
      } else {
        s.roots[r].store->bulk(op, *per_root[r], &run, &changes);
      }
      for (const auto& c : changes) {
        changed.push_back(image_id(r, c.image));
        texts[image_id(r, c.image)] = c.text;
      }
      if (!run.empty()) runs.push_back({{"root", r}, {"run", run}});
    }
  } catch (const Error& e) {
    // Checked before any write (names, regex, thresholds); a folder done before a failing one
    // keeps its run, which the answer cannot report: say so.
    std::string message = e.what();
    if (!runs.empty()) message += " (some folders were changed already: see the history)";
    return send_error(res, 400, message);
  }
  if (op.kind == BulkKind::kRetag && changed.empty() && runs.empty()) {
    bool any = false;
    for (size_t r = 0; r < s.roots.size(); ++r) any = any || !s.probs_of(r).empty();
    if (!any) return send_error(res, 400, "retag: no saved probabilities; run `lorastudio caption DIR --save-probs` first");
  }
  send_json(res, {{"changed", changed}, {"runs", runs}, {"texts", texts}});
}

void CaptionServer::history(httplib::Response& res) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  struct RunInfo {
    size_t root = 0;
    std::string run, source, time, undo_of;
    std::vector<std::string> paths;
    bool undone = false;
  };
  std::vector<RunInfo> runs;
  for (size_t r = 0; r < s.roots.size(); ++r) {
    std::map<std::string, size_t> slot;
    std::set<std::string> undone;
    const size_t first = runs.size();
    for (const auto& change : read_history(s.roots[r].store->dir())) {
      auto [it, fresh] = slot.emplace(change.run, runs.size());
      if (fresh) {
        RunInfo info;
        info.root = r;
        info.run = change.run;
        info.source = change.source;
        info.time = change.time;
        if (change.source.rfind("undo ", 0) == 0) {
          info.undo_of = change.source.substr(5);
          undone.insert(info.undo_of);
        }
        runs.push_back(std::move(info));
      }
      runs[it->second].paths.push_back(change.path);
    }
    for (size_t i = first; i < runs.size(); ++i) runs[i].undone = undone.count(runs[i].run) > 0;
  }
  std::stable_sort(runs.begin(), runs.end(), [](const RunInfo& a, const RunInfo& b) { return a.run > b.run; });
  nlohmann::json out = nlohmann::json::array();
  for (const auto& info : runs) {
    out.push_back({{"root", info.root},   {"run", info.run},        {"source", info.source},
                   {"time", info.time},   {"files", info.paths.size()}, {"paths", info.paths},
                   {"undone", info.undone}, {"undo_of", info.undo_of}});
  }
  send_json(res, {{"runs", out}});
}

void CaptionServer::undo(const httplib::Request& req, httplib::Response& res) {
  nlohmann::json body;
  if (!review::json_object_body(req, res, body)) return;
  std::vector<std::pair<size_t, std::string>> runs;
  if (const std::string refused = parse_undo_request(body, runs); !refused.empty()) return send_error(res, 400, refused);
  State& s = *state_;
  for (const auto& [root, run] : runs)
    if (root >= s.roots.size()) return send_error(res, 404, str_cat("no dataset folder ", root));
  std::lock_guard<std::mutex> lock(s.mutex);
  int restored = 0, removed = 0, unchanged = 0;
  nlohmann::json conflicts = nlohmann::json::array(), undo_runs = nlohmann::json::array();
  // The newest first: a later run's files go back before an earlier run's are compared.
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
    UndoReport report;
    try {
      report = undo_run(s.roots[it->first].store->dir(), it->second);
    } catch (const Error& e) {
      return send_error(res, 404, e.what());
    }
    restored += report.restored;
    removed += report.removed;
    unchanged += report.unchanged;
    for (const auto& c : report.conflicts) conflicts.push_back(c);
    if (!report.undo_run.empty()) undo_runs.push_back({{"root", it->first}, {"run", report.undo_run}});
  }
  send_json(res, {{"restored", restored},
                  {"removed", removed},
                  {"unchanged", unchanged},
                  {"conflicts", conflicts},
                  {"undo_runs", undo_runs}});
}

void CaptionServer::send_image(const httplib::Request& req, httplib::Response& res, bool thumbnail) {
  // Checked on the raw target: httplib has already turned %2e%2e%2f into ../ in req.path.
  const std::string prefix = thumbnail ? "/thumbs/" : "/files/", target = review::raw_target_path(req);
  if (target.rfind(prefix, 0) != 0) return send_error(res, 400, "refused: '" + target + "' is not a plain path");
  auto decoded = decode_request_path(target.substr(prefix.size()));
  if (!decoded) return send_error(res, 400, "refused: '" + target + "' is not a plain relative path");
  const size_t slash = decoded->find('/');
  State& s = *state_;
  std::optional<fs::path> file;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto found = slash == std::string::npos ? std::nullopt
                                            : s.find(decoded->substr(0, slash) + ":" + decoded->substr(slash + 1));
    if (!found) return send_error(res, 404, "no image '" + *decoded + "' in this dataset");
    file = s.roots[found->first].store->image_file(found->second);
    if (!file) return send_error(res, 403, "refused: '" + *decoded + "' links outside the dataset folder");
  }
  res.set_header("Cache-Control", "no-cache");
  if (!thumbnail) return res.set_content(core::read_file(*file), image_mime(*file));
  std::error_code ec;
  const auto time = fs::last_write_time(*file, ec);
  const uintmax_t size = ec ? 0 : fs::file_size(*file, ec);
  const std::string key = file->string();
  {
    std::lock_guard<std::mutex> lock(s.thumbnail_mutex);
    auto it = s.thumbnails.find(key);
    if (it != s.thumbnails.end() && it->second.time == time && it->second.size == size)
      return res.set_content(it->second.jpeg, "image/jpeg");
  }
  cv::Mat rgb;
  try {
    rgb = io::read_image_rgb(file->string());
  } catch (const Error& e) {
    return send_error(res, 422, e.what());
  }
  const double scale = double(kThumbnailSide) / std::max(rgb.cols, rgb.rows);
  if (scale < 1) {
    cv::Mat small;
    cv::resize(rgb, small, cv::Size(std::max(1, int(rgb.cols * scale + 0.5)), std::max(1, int(rgb.rows * scale + 0.5))),
               0, 0, cv::INTER_AREA);
    rgb = small;
  }
  const auto bytes = io::encode_image(".jpg", rgb);
  std::string jpeg(bytes.begin(), bytes.end());
  {
    std::lock_guard<std::mutex> lock(s.thumbnail_mutex);
    if (s.thumbnail_bytes + jpeg.size() > kThumbnailCacheBytes) {  // a bound, not an LRU: thumbnails are cheap
      s.thumbnails.clear();
      s.thumbnail_bytes = 0;
    }
    auto& slot = s.thumbnails[key];
    s.thumbnail_bytes = s.thumbnail_bytes - slot.jpeg.size() + jpeg.size();
    slot = {time, size, jpeg};
  }
  res.set_content(jpeg, "image/jpeg");
}

}  // namespace ls::caption
