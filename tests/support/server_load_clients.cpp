// The load test's fixture, clients and checkers; see server_load_clients.h. Every check compares
// exact values: a client owns its cells and images, so what the server acknowledged is what the
// answer, a later read and the file on disk must hold.
#include "server_load_clients.h"  // by its own folder: bench/bench_servers.cpp compiles this file without tests/ on its path

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <thread>

#include <opencv2/core.hpp>

#include "caption/caption_history.h"
#include "caption/caption_store.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/image.h"

namespace ls::test {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string load_cell_id(int client, int k) {
  char id[17];
  std::snprintf(id, sizeof(id), "%016x", 0x100000 + client * 16 + k);
  return id;
}

std::string load_image_name(int client, int j) { return str_cat("c", client < 10 ? "0" : "", client, "_", j, ".png"); }

fs::path load_caption_file(const LoadFixture& f, const std::string& image) {
  return f.dataset_dir / fs::path(image).replace_extension(".txt");
}

namespace {

// Plain writes, not atomic ones: the fixture is made before any server reads it, and ~200 fsyncs
// would take seconds on a slow disk.
size_t load_write(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary);
  out << bytes;
  LS_CHECK(out.good(), file.string(), ": cannot write the load test's fixture; check the free space");
  return bytes.size();
}

// j[key] when j is an object holding it, else null: an answer of the wrong shape is a failure to
// report, never a read through nlohmann's const operator[] (undefined for a missing key).
const json& load_at(const json& j, const std::string& key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  const auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

size_t load_write_noise(const fs::path& file, int width, int height, cv::RNG& rng) {
  cv::Mat rgb(height, width, CV_8UC3);
  rng.fill(rgb, cv::RNG::UNIFORM, 0, 256);
  const std::vector<uint8_t> png = io::encode_image(".png", rgb);
  return load_write(file, std::string(png.begin(), png.end()));
}

}  // namespace

// Noise images: PNG sizes near those of photos of the same size, not of flat colour.
LoadFixture make_load_fixture(const fs::path& work_dir, int clients, uint64_t seed) {
  LoadFixture f;
  f.clients = clients;
  f.sheet_dir = work_dir / "sheet";
  f.dataset_dir = work_dir / "dataset";
  fs::create_directories(f.sheet_dir / "cells");
  fs::create_directories(f.dataset_dir);
  cv::RNG rng(seed);
  json cells = json::array(), x_values = json::array(), y_values = json::array();
  for (int k = 0; k < LoadFixture::kCellsPerClient; ++k) x_values.push_back(std::to_string(k + 1));
  for (int c = 0; c < clients; ++c) {
    y_values.push_back(std::to_string(c + 1));
    for (int k = 0; k < LoadFixture::kCellsPerClient; ++k) {
      const std::string id = load_cell_id(c, k), image = "cells/" + id + ".png";
      f.cells.push_back(id);
      f.cell_bytes[id] = load_write_noise(f.sheet_dir / image, 128, 128, rng);
      cells.push_back({{"id", id}, {"coords", {{"x", k}, {"y", c}}}, {"image", image}});
    }
    for (int j = 0; j < LoadFixture::kImagesPerClient; ++j) {
      const std::string image = load_image_name(c, j);
      f.images.push_back(image);
      f.image_bytes[image] = load_write_noise(f.dataset_dir / image, 320, 240, rng);
      f.first_caption[image] = str_cat("lsshape, client ", c, ", image ", j, "\n");
      load_write(load_caption_file(f, image), f.first_caption[image]);
    }
  }
  const json sheet = {{"format", "lorastudio-sheet"}, {"version", 1}, {"title", "load"},
                      {"axes", {{{"role", "x"}, {"kind", "seed"}, {"title", "seed"}, {"values", x_values}},
                                {{"role", "y"}, {"kind", "cfg"}, {"title", "cfg"}, {"values", y_values}}}},
                      {"cells", cells}};
  load_write(f.sheet_dir / "sheet.json", sheet.dump());
  return f;
}

void LoadTally::merge(const LoadTally& o) {
  latency.merge(o.latency);
  requests += o.requests;
  writes += o.writes;
  errors += o.errors;
  retries += o.retries;
  disk_checks += o.disk_checks;
  disk_invalid += o.disk_invalid;
}

void LoadShared::allow_caption(const std::string& image, const std::string& text) {
  std::lock_guard<std::mutex> lock(texts_mutex_);
  texts_[image].insert(std::hash<std::string>{}(text));
}

bool LoadShared::caption_allowed(const std::string& image, const std::string& text) const {
  std::lock_guard<std::mutex> lock(texts_mutex_);
  auto it = texts_.find(image);
  return it != texts_.end() && it->second.count(std::hash<std::string>{}(text)) > 0;
}

LoadClient::LoadClient(LoadShared& shared, int port, const char* server, int index)
    : s_(shared),
      index_(index),
      http_(port, shared.options.request_timeout),
      rng_(shared.options.seed * 1000003 + static_cast<uint64_t>(index) * 2 + (server[0] == 'r')),
      server_(server) {}

void LoadClient::run() {
  while (LoadClock::now() < s_.end) step();
  tally_.retries = http_.retries();
}

LoadAnswer LoadClient::call(const std::string& method, const std::string& target, const std::string& body) {
  const auto t0 = LoadClock::now();
  LoadAnswer a = http_.request(method, target, body, body.empty() ? nullptr : "application/json");
  tally_.latency.add(std::chrono::duration<double>(LoadClock::now() - t0).count());
  ++tally_.requests;
  if (method != "GET") ++tally_.writes;
  return a;
}

bool LoadClient::expect(const LoadAnswer& a, const std::string& what, int status) {
  if (a.status == status) return true;
  fail(what + ": " + (a.status < 0 ? a.error : str_cat("status ", a.status, " ", a.body.substr(0, 160))));
  return false;
}

json LoadClient::parse(const LoadAnswer& a, const std::string& what) {
  json j = json::parse(a.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    fail(what + ": the answer is not a JSON object");
    return json::value_t::discarded;
  }
  return j;
}

void LoadClient::fail(const std::string& why) {
  ++tally_.errors;
  s_.problems.add(str_cat(server_, " client ", index_, ": ", why));
}

ReviewLoadClient::ReviewLoadClient(LoadShared& shared, int index) : LoadClient(shared, shared.review_port, "review", index) {}

std::string ReviewLoadClient::compare(const json& doc) const {
  if (!doc.is_object() || doc.value("format", "") != "lorastudio-selections" || !doc.contains("cells") ||
      !doc["cells"].is_object())
    return "not a selections document";
  for (const auto& [id, want] : mine_) {
    if (!doc["cells"].contains(id)) return "cell " + id + " missing, acknowledged as " + want.dump();
    if (doc["cells"][id] != want) return "cell " + id + " is " + doc["cells"][id].dump() + ", acknowledged as " + want.dump();
  }
  return "";
}

// The page's mix: what a reviewer's browser asks for while they go through a sheet.
void ReviewLoadClient::step() {
  const size_t dice = pick(100);
  if (dice < 8) {
    const LoadAnswer a = call("GET", "/");
    if (expect(a, "GET /") && a.body.find("<html") == std::string::npos) fail("GET /: not the page");
  } else if (dice < 43) {
    const std::string& id = s_.fixture.cells[pick(s_.fixture.cells.size())];
    const std::string target = "/files/cells/" + id + ".png";
    const LoadAnswer a = call("GET", target);
    if (expect(a, "GET " + target) && (a.body.size() != s_.fixture.cell_bytes.at(id) || a.body.rfind("\x89PNG", 0) != 0))
      fail(str_cat("GET ", target, ": ", a.body.size(), " bytes, not the cell's PNG"));
  } else if (dice < 60) {
    const LoadAnswer a = call("GET", "/api/selections");
    if (!expect(a, "GET /api/selections")) return;
    const json doc = parse(a, "GET /api/selections");
    if (const std::string wrong = compare(doc); !doc.is_discarded() && !wrong.empty()) fail("GET /api/selections: " + wrong);
  } else if (dice < 70) {
    const std::string target = dice < 65 ? "/sheet.json" : "/api/summary";
    const LoadAnswer a = call("GET", target);
    if (expect(a, "GET " + target)) parse(a, "GET " + target);
  } else {
    write();
  }
}

// A pick, reject or clear with a note (or keeping the note), then selections.json read back.
void ReviewLoadClient::write() {
  static const char* const kStates[] = {"picked", "rejected", "none"};
  const std::string id = load_cell_id(index_, static_cast<int>(pick(LoadFixture::kCellsPerClient)));
  const std::string target = "/api/selections/" + id;
  json want = {{"state", kStates[pick(3)]}, {"note", str_cat("client ", index_, " write ", ++seq_)}};
  json body = want;
  auto known = mine_.find(id);
  if (known != mine_.end() && pick(4) == 0) {  // the state only: the note stays
    body.erase("note");
    want["note"] = known->second["note"];
  }
  const std::string method = pick(2) ? "PUT" : "POST";
  const LoadAnswer a = call(method, target, body.dump());
  if (!expect(a, method + " " + target)) {
    mine_.erase(id);  // unknown now: no longer compared
    return;
  }
  mine_[id] = want;
  const json doc = parse(a, method + " " + target);
  if (const std::string wrong = compare(doc); !doc.is_discarded() && !wrong.empty()) fail(method + " " + target + ": answer: " + wrong);
  ++tally_.disk_checks;
  std::string text;
  try {
    text = core::read_file(s_.fixture.sheet_dir / "selections.json");
  } catch (const Error&) {
  }
  const json on_disk = json::parse(text, nullptr, false);
  if (on_disk.is_discarded()) {
    ++tally_.disk_invalid;
    return fail(method + " " + target + ": selections.json is not JSON after the answer: " + text.substr(0, 120));
  }
  if (const std::string wrong = compare(on_disk); !wrong.empty()) {
    ++tally_.disk_invalid;
    fail(method + " " + target + ": selections.json: " + wrong);
  }
}

CaptionLoadClient::CaptionLoadClient(LoadShared& shared, int index)
    : LoadClient(shared, shared.captions_port, "captions", index) {
  for (int j = 0; j < LoadFixture::kImagesPerClient; ++j) {
    const std::string image = load_image_name(index, j);
    expected_[image] = s_.fixture.first_caption.at(image);
  }
}

std::string CaptionLoadClient::compare_disk() const {
  for (const auto& [image, want] : expected_) {
    const auto text = caption::read_caption_file(load_caption_file(s_.fixture, image));
    if (text != want) return image + ": holds " + (text ? json(*text).dump() : "no file") + ", acknowledged " + json(want).dump();
  }
  return "";
}

// After a failed write the server's state is unknown: what is on disk is what comes next.
void CaptionLoadClient::resync() {
  for (auto& [image, text] : expected_)
    text = caption::read_caption_file(load_caption_file(s_.fixture, image)).value_or("");
}

void CaptionLoadClient::check_disk(const std::string& image, const std::string& what) {
  ++tally_.disk_checks;
  const auto text = caption::read_caption_file(load_caption_file(s_.fixture, image));
  if (text == expected_.at(image)) return;
  ++tally_.disk_invalid;
  fail(what + ": " + image + " holds " + (text ? json(*text).dump() : "no file") + ", acknowledged " +
       json(expected_.at(image)).dump());
}

// The editor's mix: the list and thumbnails on load, images in the lightbox, tag and token
// counts while typing, saves, bulk changes (preview first) and undos.
void CaptionLoadClient::step() {
  const size_t dice = pick(100);
  const std::string& any = s_.fixture.images[pick(s_.fixture.images.size())];
  if (dice < 8) {
    list_images();
  } else if (dice < 28) {
    const LoadAnswer a = call("GET", "/thumbs/0/" + any);
    if (expect(a, "GET /thumbs/0/" + any) && a.body.rfind("\xff\xd8", 0) != 0) fail("GET /thumbs/0/" + any + ": not a JPEG");
  } else if (dice < 38) {
    const LoadAnswer a = call("GET", "/files/0/" + any);
    if (expect(a, "GET /files/0/" + any) && a.body.size() != s_.fixture.image_bytes.at(any))
      fail(str_cat("GET /files/0/", any, ": ", a.body.size(), " bytes, not the image"));
  } else if (dice < 50) {
    const std::string what = dice < 43 ? "GET /api/tags" : dice < 45 ? "GET /api/history" : "POST /api/tokens";
    const LoadAnswer a = dice < 45 ? call("GET", what.substr(4)) : call("POST", "/api/tokens", R"({"text": "lsshape, red"})");
    if (!expect(a, what)) return;
    const json j = parse(a, what);
    const char* key = dice < 43 ? "tags" : dice < 45 ? "runs" : "tokens";
    if (!j.is_discarded() && !j.contains(key)) fail(what + ": no '" + key + "' in the answer");
  } else if (dice < 80) {
    save_caption();
  } else {
    bulk();
  }
}

void CaptionLoadClient::list_images() {
  const LoadAnswer a = call("GET", "/api/images");
  if (!expect(a, "GET /api/images")) return;
  const json doc = parse(a, "GET /api/images");
  if (doc.is_discarded()) return;
  size_t seen = 0;
  const json& images = load_at(doc, "images");
  if (!images.is_array()) return fail("GET /api/images: no images list");
  for (const auto& e : images) {
    const json& name = load_at(e, "image");
    auto it = expected_.find(name.is_string() ? name.get<std::string>() : "");
    if (it == expected_.end()) continue;
    ++seen;
    if (load_at(e, "text") != it->second || load_at(e, "hash") != caption::caption_hash(it->second))
      fail("GET /api/images: " + it->first + " listed as " + load_at(e, "text").dump() + ", acknowledged " +
           json(it->second).dump());
  }
  if (seen != expected_.size()) fail(str_cat("GET /api/images: ", seen, " of the client's ", expected_.size(), " images listed"));
}

void CaptionLoadClient::save_caption() {
  const std::string image = load_image_name(index_, static_cast<int>(pick(LoadFixture::kImagesPerClient)));
  const std::string text = str_cat("lsshape, client ", index_, ", edit ", ++seq_, "\n");
  s_.allow_caption(image, text);  // before the server can write it
  const json body = {{"id", "0:" + image}, {"text", text}, {"hash", caption::caption_hash(expected_.at(image))}};
  const LoadAnswer a = call("PUT", "/api/caption", body.dump());
  if (!expect(a, "PUT /api/caption " + image)) return resync();
  expected_[image] = text;
  const json j = parse(a, "PUT /api/caption");
  if (!j.is_discarded() && (load_at(j, "saved") != true || load_at(load_at(j, "image"), "text") != text))
    fail("PUT /api/caption " + image + ": answered " + a.body.substr(0, 160));
  check_disk(image, "PUT /api/caption");
}

// add_tag on both own images: preview (nothing written), apply (the previewed texts written,
// one run), and every other time an undo of that run (the texts before it back).
void CaptionLoadClient::bulk() {
  const std::string tag = str_cat("bulk ", index_, " ", ++seq_);
  json ids = json::array();
  for (const auto& [image, text] : expected_) ids.push_back("0:" + image);
  json body = {{"op", "add_tag"}, {"tag", tag}, {"ids", ids}, {"preview", true}};
  LoadAnswer a = call("POST", "/api/bulk", body.dump());
  if (!expect(a, "POST /api/bulk preview")) return;
  const json preview = parse(a, "POST /api/bulk preview");
  if (preview.is_discarded()) return;
  for (const auto& [image, text] : expected_) {
    const json& t = load_at(load_at(preview, "texts"), "0:" + image);
    if (!t.is_string() || t.get<std::string>().find(tag) == std::string::npos)
      return fail("POST /api/bulk preview: " + image + " would become " + t.dump());
    s_.allow_caption(image, t.get<std::string>());
    check_disk(image, "POST /api/bulk preview");
  }
  const std::map<std::string, std::string> before = expected_;
  body.erase("preview");
  a = call("POST", "/api/bulk", body.dump());
  if (!expect(a, "POST /api/bulk")) {
    return resync();
  }
  const json done = parse(a, "POST /api/bulk");
  if (done.is_discarded()) return;
  const json& texts = load_at(preview, "texts");
  for (auto& [image, text] : expected_) text = load_at(texts, "0:" + image).get<std::string>();  // checked above
  const json& runs = load_at(done, "runs");
  if (load_at(done, "texts") != texts || !runs.is_array() || runs.size() != 1)
    return fail("POST /api/bulk: answered " + a.body.substr(0, 200) + " after the preview " + texts.dump());
  for (const auto& [image, text] : expected_) check_disk(image, "POST /api/bulk");
  if (pick(2)) return;
  const json undo = {{"runs", runs}};
  a = call("POST", "/api/undo", undo.dump());
  if (!expect(a, "POST /api/undo")) {
    return resync();
  }
  const json undone = parse(a, "POST /api/undo");
  expected_ = before;
  const json& conflicts = load_at(undone, "conflicts");
  if (!undone.is_discarded() &&
      (load_at(undone, "restored") != expected_.size() || !conflicts.is_array() || !conflicts.empty()))
    fail("POST /api/undo: answered " + a.body.substr(0, 200));
  for (const auto& [image, text] : expected_) check_disk(image, "POST /api/undo");
}

LoadTally check_selections_file(LoadShared& s) {
  LoadTally t;
  const fs::path file = s.fixture.sheet_dir / "selections.json";
  while (!s.stop_checkers) {
    std::error_code ec;
    if (fs::exists(file, ec)) {
      std::string text;
      try {
        text = core::read_file(file);
      } catch (const Error&) {
      }
      const json doc = json::parse(text, nullptr, false);
      ++t.disk_checks;
      if (doc.is_discarded() || !doc.is_object() || !doc.contains("cells") || !doc["cells"].is_object()) {
        ++t.disk_invalid;
        s.problems.add("selections.json checker: not a selections document: " + text.substr(0, 120));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return t;
}

LoadTally check_caption_files(LoadShared& s) {
  LoadTally t;
  for (size_t i = 0; !s.stop_checkers; i = (i + 1) % s.fixture.images.size()) {
    const std::string& image = s.fixture.images[i];
    const auto text = caption::read_caption_file(load_caption_file(s.fixture, image));
    ++t.disk_checks;
    if (!text || !s.caption_allowed(image, *text)) {
      ++t.disk_invalid;
      s.problems.add("caption checker: " + image + " holds " + (text ? json(*text).dump() : "no file") +
                     ", a text no client sent");
    }
    // A pass over the files every 20 ms: often enough to catch a torn write, rarely enough
    // (a few thousand reads a second) to leave the CPU to the servers.
    if (i + 1 == s.fixture.images.size()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return t;
}

}  // namespace ls::test
