// Sheet rendering with content-hash reuse; see sheet_runner.h.
#include "sheet/sheet_runner.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "a1111/request_params.h"
#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/line_log.h"
#include "core/progress.h"
#include "core/runtime.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "io/image.h"
#include "io/png_text.h"
#include "models/model_source.h"
#include "sample/pipeline.h"
#include "sheet/grid_render.h"
#include "sheet/sheet_file.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace ls::sheet {

namespace {

constexpr int kCellFormat = 1;  // bump when the same parameters would give other pixels

std::string tokenizer_sha256(const std::string& path) {
  if (fs::is_directory(path)) {
    return core::sha256_hex(core::read_file(fs::path(path) / "vocab.json") + core::read_file(fs::path(path) / "merges.txt"));
  }
  return core::sha256_hex(core::read_file(path));
}

struct Identity {
  std::string tokenizer, config, device, dtype;
  std::string prediction;  // the sheet's prediction choice (auto: what each model says)
};

/// Every request field under its name, typed (sample/request.h).
void add_request_fields(json& out, const sample::ImageSettings& settings) {
  for (const sample::RequestField& f : sample::request_fields())
    std::visit([&](auto member) { out[f.key.name] = settings.*member; }, f.member);
}

/// The first 16 hex of the SHA-256 of everything that decides a cell's pixels.
std::string cell_id(const CellPlan& cell, const Identity& who, a1111::FileHashCache& hashes) {
  const auto& r = cell.request;
  json loras = json::array();
  for (const auto& l : r.loras) loras.push_back({hashes.sha256(l.path), l.strength});
  json key = {{"format", kCellFormat},      {"model", a1111::model_sha256(cell.checkpoint, hashes)},
              {"model_config", who.config}, {"tokenizer", who.tokenizer},
              {"device", who.device},       {"dtype", who.dtype},
              {"loras", loras}};
  if (!cell.vae.empty()) key["vae"] = a1111::model_sha256(cell.vae, hashes);  // absent: ids of older sheets stay
  // "auto" follows the model file, which the key holds already; another choice renders other images.
  if (who.prediction != "auto") key["prediction"] = who.prediction;
  add_request_fields(key, r);
  return core::sha256_hex(key.dump()).substr(0, 16);
}

json params_json(const a1111::GenerationParams& p, const std::vector<sample::LoraSpec>& files) {
  json loras = json::array();
  for (size_t i = 0; i < p.loras.size(); ++i) {
    const auto& l = p.loras[i];
    json j = {{"name", l.name}, {"path", l.path}, {"strength", l.strength}, {"hash", l.hash}};
    const int64_t epoch = lora_file_epoch(files[i].path);
    if (epoch >= 0) j["epoch"] = epoch;
    loras.push_back(j);
  }
  json out = {{"model", p.model}, {"model_hash", p.model_hash}, {"loras", loras}};
  add_request_fields(out, p);
  return out;
}

struct CellRecord {
  CellPlan plan;
  std::string id;
  a1111::GenerationParams params;
  std::string infotext;
  bool present = false;
};

std::string cell_image(const std::string& id) { return "cells/" + id + ".png"; }

// Cells are renamed into place whole, but a cell cut short some other way (a copy interrupted, an
// older lorastudio's direct write, a full disk under another tool) must be rendered again, never
// reused: a PNG ends with its 12-byte IEND chunk, which a cut file lacks.
bool cell_is_whole(const fs::path& png) {
  static const unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const unsigned char kIend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
  std::error_code ec;
  if (!fs::is_regular_file(png, ec) || fs::file_size(png, ec) < sizeof kSignature + sizeof kIend) return false;
  std::ifstream in(png, std::ios::binary);
  char head[8], tail[12];
  in.read(head, sizeof head);
  in.seekg(-static_cast<std::streamoff>(sizeof tail), std::ios::end);
  in.read(tail, sizeof tail);
  return in.good() && std::memcmp(head, kSignature, sizeof head) == 0 && std::memcmp(tail, kIend, sizeof tail) == 0;
}

std::string grid_name(int64_t page) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "grid-%03lld.png", static_cast<long long>(page));
  return buf;
}

std::string title_of(const Axis& a) { return a.title.empty() ? axis_title(a.kind) : a.title; }

const Axis* axis_for(const SheetDefinition& spec, AxisRole role) {
  for (const auto& a : spec.axes) {
    if (a.role == role) return &a;
  }
  return nullptr;
}

int64_t axis_size(const SheetDefinition& spec, AxisRole role) {
  const Axis* a = axis_for(spec, role);
  return a ? static_cast<int64_t>(a->values.size()) : 1;
}

int64_t coord(const CellPlan& c, AxisRole role) {
  const auto it = c.coords.find(role);
  return it == c.coords.end() ? 0 : it->second;
}

void write_manifest(const SheetDefinition& spec, const std::vector<CellRecord>& cells, const fs::path& dir) {
  Sheet sheet;
  sheet.title = spec.title;
  for (const auto& a : spec.axes) sheet.axes.push_back({role_name(a.role), kind_name(a.kind), title_of(a), a.labels, a.facets});
  for (const auto& f : spec.figures) sheet.figures.push_back({f.title, f.image});
  const Axis* page_axis = axis_for(spec, AxisRole::kPage);
  for (int64_t p = 0; p < axis_size(spec, AxisRole::kPage); ++p) {
    sheet.page_labels.push_back(page_axis ? title_of(*page_axis) + ": " + page_axis->labels[static_cast<size_t>(p)] : "");
    sheet.grids.push_back(grid_name(p));
  }
  for (const auto& c : cells) {
    if (!c.present) continue;
    SheetCell cell;
    cell.id = c.id;
    for (const auto& [role, i] : c.plan.coords) cell.coords[role_name(role)] = static_cast<int>(i);
    cell.image = cell_image(c.id);
    cell.width = static_cast<int>(c.plan.request.width);
    cell.height = static_cast<int>(c.plan.request.height);
    cell.params = params_json(c.params, c.plan.request.loras);
    cell.infotext = c.infotext;
    sheet.cells.push_back(std::move(cell));
  }
  write_sheet(dir / "sheet.json", sheet);
}

void write_grids(const SheetDefinition& spec, const std::vector<CellRecord>& cells, const fs::path& dir) {
  const auto labels = [&](AxisRole role) {
    GridAxis g;
    if (const Axis* a = axis_for(spec, role)) g = {title_of(*a), a->labels};
    return g;
  };
  const int64_t nx = axis_size(spec, AxisRole::kX), ny = axis_size(spec, AxisRole::kY);
  const int64_t nz = axis_size(spec, AxisRole::kZ);
  for (int64_t p = 0; p < axis_size(spec, AxisRole::kPage); ++p) {
    GridSpec g;
    g.title = spec.title;
    if (const Axis* pa = axis_for(spec, AxisRole::kPage)) {
      const std::string page_label = title_of(*pa) + ": " + pa->labels[static_cast<size_t>(p)];
      g.title = g.title.empty() ? page_label : g.title + " — " + page_label;
    }
    g.x = labels(AxisRole::kX);
    g.y = labels(AxisRole::kY);
    if (axis_for(spec, AxisRole::kZ)) g.z = labels(AxisRole::kZ);
    g.style.placeholder = "pending";
    g.cells.assign(static_cast<size_t>(nz),
                   std::vector<std::vector<cv::Mat>>(static_cast<size_t>(ny), std::vector<cv::Mat>(static_cast<size_t>(nx))));
    for (const auto& c : cells) {
      if (!c.present || coord(c.plan, AxisRole::kPage) != p) continue;
      g.cells[static_cast<size_t>(coord(c.plan, AxisRole::kZ))][static_cast<size_t>(coord(c.plan, AxisRole::kY))]
             [static_cast<size_t>(coord(c.plan, AxisRole::kX))] = io::read_image_rgb((dir / cell_image(c.id)).string());
    }
    io::write_image((dir / grid_name(p)).string(), render_grid(g));
  }
}

}  // namespace

std::string axis_title(AxisKind kind) {
  switch (kind) {
    case AxisKind::kLora: return "LoRA file";
    case AxisKind::kStrength: return "LoRA strength";
    case AxisKind::kPrompt: return "prompt";
    case AxisKind::kSeed: return "seed";
    case AxisKind::kSampler: return "sampler";
    case AxisKind::kSteps: return "steps";
    case AxisKind::kCfg: return "CFG scale";
    case AxisKind::kModel: return "base model";
    case AxisKind::kVae: return "VAE";
  }
  return "?";
}

SheetRunStats run_sheet(const SheetDefinition& spec, const SheetRunOptions& options) {
  const double t0 = core::monotonic_seconds();
  const auto plans = plan_cells(spec);
  for (const auto& plan : plans) sample::validate_request(plan.request);
  const fs::path dir(spec.output_dir);
  fs::create_directories(dir / "cells");
  core::clean_interrupted_writes(dir);  // what a killed run left: never read, only removed
  core::clean_interrupted_writes(dir / "cells");
  a1111::FileHashCache hashes(spec.cache_dir.empty() ? a1111::user_cache_dir() : spec.cache_dir);

  const std::string tokenizer = models::require_tokenizer(spec.model.tokenizer, plans.front().checkpoint, "sheet");
  const Identity who{tokenizer_sha256(tokenizer),
                     spec.model.config.empty() ? "" : core::sha256_hex(core::read_file(spec.model.config)),
                     spec.model.device.str(), core::dtype_name(spec.model.dtype), spec.model.prediction};

  std::vector<CellRecord> cells;
  SheetRunStats stats;
  std::map<std::string, models::ModelPrediction> predictions;  // by checkpoint: read each header once
  for (const auto& plan : plans) {
    if (!predictions.count(plan.checkpoint))
      predictions[plan.checkpoint] = models::resolve_prediction(spec.model.prediction, plan.checkpoint);
    CellRecord c{plan, cell_id(plan, who, hashes), a1111::generation_params(plan.request, plan.checkpoint, hashes, spec.paths, plan.vae), "", false};
    a1111::add_prediction(c.params, predictions.at(plan.checkpoint));
    c.infotext = a1111::format_infotext(c.params);
    c.present = cell_is_whole(dir / cell_image(c.id));
    stats.reused += c.present;
    cells.push_back(std::move(c));
  }
  stats.cells = static_cast<int64_t>(cells.size());
  const int64_t to_render = stats.cells - stats.reused;

  core::LineLog log(dir / "sheet-log.jsonl");
  log.append(json{{"event", "start"}, {"cells", stats.cells}, {"reused", stats.reused}, {"to_render", to_render}}.dump());
  write_manifest(spec, cells, dir);

  core::Progress progress("sheet", to_render, "cell", options.progress && to_render > 0);
  // One model in memory at a time: render the cells of each checkpoint (and VAE) together.
  std::vector<std::pair<std::string, std::string>> models;
  for (const auto& c : cells) {
    const std::pair<std::string, std::string> m{c.plan.checkpoint, c.plan.vae};
    if (!c.present && std::find(models.begin(), models.end(), m) == models.end()) models.push_back(m);
  }
  for (const auto& [checkpoint, vae] : models) {
    sample::ModelSource source = spec.model;
    source.checkpoint = checkpoint;
    source.vae = vae;
    source.tokenizer = tokenizer;
    auto pipeline = std::make_unique<sample::Pipeline>(source);
    for (auto& c : cells) {
      if (c.present || c.plan.checkpoint != checkpoint || c.plan.vae != vae) continue;
      const double start = core::monotonic_seconds();
      const auto image = pipeline->generate(c.plan.request, [&](int64_t step, int64_t steps) {
        progress.set_suffix("step " + std::to_string(step) + "/" + std::to_string(steps));
      });
      io::write_png_with_text((dir / cell_image(c.id)).string(), image, {{"parameters", c.infotext}});
      c.present = true;
      ++stats.rendered;
      progress.advance();
      json coords = json::object();
      for (const auto& [role, i] : c.plan.coords) coords[role_name(role)] = i;
      log.append(json{{"event", "cell"}, {"id", c.id}, {"coords", coords}, {"seconds", core::monotonic_seconds() - start}}.dump());
      write_manifest(spec, cells, dir);
    }
  }
  progress.finish();
  write_grids(spec, cells, dir);
  stats.seconds = core::monotonic_seconds() - t0;
  log.append(json{{"event", "end"}, {"rendered", stats.rendered}, {"reused", stats.reused}, {"seconds", stats.seconds}}.dump());
  return stats;
}

}  // namespace ls::sheet
