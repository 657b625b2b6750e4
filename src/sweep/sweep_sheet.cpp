// The sweep's contact sheet and loss plot; see sweep_sheet.h.
#include "sweep/sweep_sheet.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/error.h"
#include "core/runtime.h"
#include "core/strings.h"
#include "train/train_log.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace ls::sweep {

std::vector<RunLora> run_loras(const SweepRun& run) {
  const std::string& name = run.config.output_name;
  std::map<int64_t, std::string> by_epoch;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run.folder, ec)) {
    const fs::path& p = e.path();
    if (!e.is_regular_file() || p.extension() != ".safetensors") continue;
    const std::string stem = p.stem().string();
    const bool final_file = stem == name;
    if (!final_file && !(stem.size() == name.size() + 7 && stem.rfind(name + "-", 0) == 0 && sheet::epoch_of(p.string()) >= 0))
      continue;
    const int64_t epoch = sheet::lora_file_epoch(p.string());
    if (epoch < 1) continue;
    // The final file and an epoch file of the same epoch hold the same weights: keep the final one.
    if (final_file || !by_epoch.count(epoch)) by_epoch[epoch] = p.string();
  }
  std::vector<RunLora> out;
  for (const auto& [epoch, path] : by_epoch) out.push_back({epoch, path});
  return out;
}

namespace {

/// The epochs [sheet] asks for, out of those a run has.
std::vector<RunLora> chosen(const SweepSheetSpec& spec, std::vector<RunLora> loras) {
  if (loras.empty()) return loras;
  const int64_t last = loras.back().epoch;
  std::vector<RunLora> out;
  for (const RunLora& l : loras) {
    if (!spec.epochs.empty() && std::find(spec.epochs.begin(), spec.epochs.end(), l.epoch) == spec.epochs.end()) continue;
    if (spec.every_n_epochs && l.epoch % spec.every_n_epochs != 0 && l.epoch != last) continue;
    out.push_back(l);
  }
  if (spec.last_n_epochs && static_cast<int64_t>(out.size()) > spec.last_n_epochs)
    out.erase(out.begin(), out.end() - spec.last_n_epochs);
  return out;
}

bool given(const SweepSheetSpec& spec, const char* key) {
  return std::find(spec.given.begin(), spec.given.end(), key) != spec.given.end();
}

}  // namespace

SweepSheetPlan plan_sweep_sheet(const Sweep& sweep) {
  const SweepSheetSpec& spec = sweep.sheet;
  LS_CHECK(spec.present, sweep.file, ": no [sheet] table; add one with prompts (and seeds, strengths, ...) to compare the runs",
           " (docs/sweep.md)");
  SweepSheetPlan plan;
  sheet::SheetDefinition& d = plan.definition;
  d = spec.settings;
  const train::TrainConfig& first = sweep.runs.front().config;
  if (!given(spec, "model")) d.model.checkpoint = first.pretrained_model_name_or_path;
  if (!given(spec, "model_config")) d.model.config = first.model_config;
  if (!given(spec, "tokenizer")) d.model.tokenizer = first.tokenizer;
  if (!given(spec, "device")) d.model.device = core::parse_device(first.device);
  if (!given(spec, "dtype"))  // as the training's frozen weights
    d.model.dtype = first.mixed_precision == "no" ? c10::kFloat : core::parse_dtype(first.mixed_precision);
  if (!given(spec, "output_dir")) d.output_dir = (fs::path(sweep.output_dir) / "sheet").string();
  if (!given(spec, "title")) d.title = "sweep " + fs::path(sweep.file).filename().string();
  d.request.seed = spec.seeds.front();
  d.request.prompt = spec.prompts.front();

  // y: every run's chosen epochs; a run renders on its own base model unless [sheet] names one.
  std::vector<std::string> files, labels, checkpoints;
  std::vector<sheet::Facets> facets;
  bool other_models = false;
  for (const SweepRun& run : sweep.runs) {
    const auto loras = chosen(spec, run_loras(run));
    if (loras.empty()) {
      plan.notes.push_back("run " + run.label + ": no LoRA file of the chosen epochs yet; left out of the sheet");
      continue;
    }
    ++plan.runs;
    for (const RunLora& l : loras) {
      files.push_back(l.path);
      labels.push_back((sweep.runs.size() == 1 ? std::string("epoch ") : run.label + " e") + std::to_string(l.epoch));
      sheet::Facets f;
      for (const auto& [key, value] : run.values) f.emplace_back(key, facet_value(key, value));
      facets.push_back(std::move(f));
      checkpoints.push_back(given(spec, "model") ? "" : run.config.pretrained_model_name_or_path);
      other_models = other_models || checkpoints.back() != d.model.checkpoint;
    }
  }
  LS_CHECK(!files.empty(), sweep.file, ": no run has a LoRA file to compare yet; train first (lorastudio sweep ", sweep.file, ")");
  sheet::set_axis(d, sheet::AxisRole::kY, sheet::AxisKind::kLora, files, sweep.file + " [sheet]");
  for (sheet::Axis& a : d.axes) {
    if (a.kind != sheet::AxisKind::kLora) continue;
    a.labels = labels;
    a.title = sweep.runs.size() == 1 ? "epoch" : "run, epoch";
    if (!sweep.varied_keys.empty()) a.facets = facets;
    if (other_models) a.checkpoints = checkpoints;
  }
  // The rest: what has more than one value, in this order, on x, z and page.
  std::vector<std::pair<sheet::AxisKind, std::vector<std::string>>> rest;
  std::vector<std::string> strengths, seeds;
  for (double s : spec.strengths) strengths.push_back(core::format_double(s));
  for (int64_t s : spec.seeds) seeds.push_back(std::to_string(s));
  if (spec.strengths.size() > 1 || spec.strengths.front() != 1.0) rest.emplace_back(sheet::AxisKind::kStrength, strengths);
  if (seeds.size() > 1) rest.emplace_back(sheet::AxisKind::kSeed, seeds);
  if (spec.prompts.size() > 1) rest.emplace_back(sheet::AxisKind::kPrompt, spec.prompts);
  const sheet::AxisRole roles[] = {sheet::AxisRole::kX, sheet::AxisRole::kZ, sheet::AxisRole::kPage};
  for (size_t i = 0; i < rest.size(); ++i) sheet::set_axis(d, roles[i], rest[i].first, rest[i].second, sweep.file + " [sheet]");
  sheet::validate(d);
  return plan;
}

bool write_sweep_loss_curves(const Sweep& sweep, const std::string& png_path) {
  std::vector<train::LossSeries> series;
  for (const SweepRun& run : sweep.runs) {
    const fs::path log = fs::path(run.folder) / train::log_file_name(run.config.output_name);
    std::error_code ec;
    if (!fs::is_regular_file(log, ec)) continue;
    auto records = train::read_step_records(log.string());
    if (!records.empty()) series.push_back({run.label, std::move(records)});
  }
  if (series.empty()) return false;
  fs::create_directories(fs::path(png_path).parent_path());
  train::write_loss_curves(png_path, series);
  return true;
}

SweepSheetResult render_sweep_sheet(const Sweep& sweep, const sheet::SheetRunOptions& options) {
  SweepSheetPlan plan = plan_sweep_sheet(sweep);
  if (write_sweep_loss_curves(sweep, (fs::path(plan.definition.output_dir) / "loss.png").string()))
    plan.definition.figures.push_back({"training loss, all runs", "loss.png"});
  SweepSheetResult result;
  result.stats = sheet::run_sheet(plan.definition, options);
  result.folder = plan.definition.output_dir;
  result.notes = std::move(plan.notes);
  return result;
}

}  // namespace ls::sweep
