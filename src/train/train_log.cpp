#include "train/train_log.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/image.h"

namespace ls::train {
namespace {

bool is_step_line(const nlohmann::json& j) { return j.is_object() && j.contains("step") && j.contains("loss"); }

StepRecord record_from_json(const nlohmann::json& j) {
  StepRecord r;
  r.step = j.at("step").get<int64_t>();
  r.epoch = j.value("epoch", 0);
  r.loss = j.at("loss").is_number() ? j.at("loss").get<double>() : NAN;
  r.loss_avg = j.value("loss_avg", r.loss);
  if (j.contains("lr")) r.lrs = j.at("lr").get<std::vector<double>>();
  r.seconds = j.value("seconds", 0.0);
  r.loss_scale = j.value("loss_scale", 0.0);
  r.skipped = j.value("skipped", false);
  return r;
}

}  // namespace

TrainLog::TrainLog(std::string path, int64_t keep_through_step) : path_(std::move(path)) {
  if (std::filesystem::exists(path_)) {
    // Keep everything up to the resumed step (events included), drop the rest of the old run.
    std::ifstream in(path_);
    std::string line, kept;
    bool past = false;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) continue;  // a line cut by a kill
      if (is_step_line(j) && j.at("step").get<int64_t>() > keep_through_step) past = true;
      if (!past) kept += line + "\n";
    }
    core::write_file_atomic(path_, kept);
  }
  out_ = std::make_unique<core::LineLog>(path_);
}

void TrainLog::append(const StepRecord& r) {
  nlohmann::json j{{"step", r.step}, {"epoch", r.epoch}, {"loss", r.loss}, {"loss_avg", r.loss_avg},
                   {"lr", r.lrs}, {"seconds", r.seconds}};
  if (r.loss_scale > 0) j["loss_scale"] = r.loss_scale;
  if (r.skipped) j["skipped"] = true;
  if (!std::isfinite(r.loss)) j["loss"] = nullptr;  // JSON has no NaN
  out_->append(j.dump());  // one write per line: a killed run keeps every finished step
}

void TrainLog::event(const std::string& json_object_text) {
  out_->append(json_object_text);
}

std::vector<StepRecord> read_step_records(const std::string& path) {
  std::ifstream in(path);
  LS_CHECK(in.good(), path, ": cannot read the training log");
  std::vector<StepRecord> records;
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && is_step_line(j)) records.push_back(record_from_json(j));
  }
  return records;
}

namespace {

// 1, 2, 5 x 10^k tick spacing giving about `target` ticks over `span`.
double nice_step(double span, int target) {
  const double raw = span / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

std::string tick_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

namespace {

// Tableau's ten categorical colours (matplotlib's default cycle), as OpenCV's BGR.
const cv::Scalar kSeriesColours[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44},   {40, 39, 214},  {189, 103, 148},
                                     {75, 86, 140},  {194, 119, 227}, {127, 127, 127}, {34, 189, 188}, {207, 190, 23}};

/// Each point's mean over the last `window` points (fewer at the start).
std::vector<double> running_mean(const std::vector<std::pair<double, double>>& pts, int window) {
  std::vector<double> out;
  double sum = 0;
  for (size_t i = 0; i < pts.size(); ++i) {
    sum += pts[i].second;
    if (i >= static_cast<size_t>(window)) sum -= pts[i - window].second;
    out.push_back(sum / static_cast<double>(std::min<size_t>(i + 1, window)));
  }
  return out;
}

}  // namespace

void write_loss_curve(const std::string& png_path, const std::vector<StepRecord>& records, int width, int height,
                      int window) {
  write_loss_curves(png_path, {{"", records}}, width, height, window);
}

void write_loss_curves(const std::string& png_path, const std::vector<LossSeries>& series, int width, int height,
                       int window) {
  // (step, loss) per series, finite only.
  std::vector<std::vector<std::pair<double, double>>> pts(series.size());
  bool any = false;
  for (size_t s = 0; s < series.size(); ++s) {
    for (const auto& r : series[s].records)
      if (std::isfinite(r.loss)) pts[s].emplace_back(static_cast<double>(r.step), r.loss);
    any = any || !pts[s].empty();
  }
  const bool one = series.size() == 1;
  cv::Mat img(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int left = 80, right = 20, top = 40, bottom = 50;
  const cv::Rect area(left, top, width - left - right, height - top - bottom);
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  const std::string title = one ? "training loss (thin: per step, thick: mean of " + std::to_string(window) + ")"
                                : "training loss, mean of " + std::to_string(window) + " steps, one line per run";
  cv::putText(img, title, {left, 25}, font, 0.5, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::rectangle(img, area, cv::Scalar(0, 0, 0), 1);
  if (any) {
    // One run: its raw losses set the range. Several: the running means do (raw noise would flatten them).
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    std::vector<std::vector<double>> means(series.size());
    for (size_t s = 0; s < series.size(); ++s) {
      means[s] = running_mean(pts[s], window);
      for (size_t i = 0; i < pts[s].size(); ++i) {
        const double y = one ? pts[s][i].second : means[s][i];
        x0 = std::min(x0, pts[s][i].first), x1 = std::max(x1, pts[s][i].first);
        y0 = std::min(y0, y), y1 = std::max(y1, y);
      }
    }
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 <= y0) y1 = y0 + std::max(1e-6, std::abs(y0) * 0.1);
    const double pad = (y1 - y0) * 0.05;
    y0 -= pad, y1 += pad;
    auto map = [&](double x, double y) {
      return cv::Point(area.x + static_cast<int>(std::lround((x - x0) / (x1 - x0) * (area.width - 1))),
                       area.y + static_cast<int>(std::lround((y1 - y) / (y1 - y0) * (area.height - 1))));
    };
    const cv::Scalar grid(225, 225, 225), ink(60, 60, 60);
    const double ys = nice_step(y1 - y0, 6), xs = nice_step(x1 - x0, 8);
    for (double y = std::ceil(y0 / ys) * ys; y <= y1; y += ys) {
      cv::line(img, map(x0, y), map(x1, y), grid, 1);
      cv::putText(img, tick_text(y), {5, map(x0, y).y + 4}, font, 0.4, ink, 1, cv::LINE_AA);
    }
    for (double x = std::ceil(x0 / xs) * xs; x <= x1; x += xs) {
      cv::line(img, map(x, y0), map(x, y1), grid, 1);
      cv::putText(img, tick_text(x), {map(x, y0).x - 10, area.y + area.height + 18}, font, 0.4, ink, 1, cv::LINE_AA);
    }
    cv::putText(img, "step", {area.x + area.width / 2 - 15, height - 10}, font, 0.5, ink, 1, cv::LINE_AA);
    cv::rectangle(img, area, cv::Scalar(0, 0, 0), 1);
    for (size_t s = 0; s < series.size(); ++s) {
      std::vector<cv::Point> raw, mean;
      for (size_t i = 0; i < pts[s].size(); ++i) {
        raw.push_back(map(pts[s][i].first, pts[s][i].second));
        mean.push_back(map(pts[s][i].first, means[s][i]));
      }
      if (one) {
        cv::polylines(img, raw, false, cv::Scalar(150, 190, 240), 1, cv::LINE_AA);  // RGB: light blue
        cv::polylines(img, mean, false, cv::Scalar(20, 60, 170), 2, cv::LINE_AA);
      } else {
        cv::polylines(img, mean, false, kSeriesColours[s % 10], 2, cv::LINE_AA);
      }
    }
    if (!one) {  // the legend, top right inside the plot, one line per run
      int label_width = 0;
      for (const auto& se : series) label_width = std::max(label_width, cv::getTextSize(se.label, font, 0.45, 1, nullptr).width);
      const int row = 18, box_w = label_width + 40;
      const cv::Rect box(area.x + area.width - box_w - 8, area.y + 8, box_w, row * static_cast<int>(series.size()) + 8);
      cv::rectangle(img, box, cv::Scalar(255, 255, 255), cv::FILLED);
      cv::rectangle(img, box, cv::Scalar(180, 180, 180), 1);
      for (size_t s = 0; s < series.size(); ++s) {
        const int y = box.y + 4 + row * static_cast<int>(s) + row / 2;
        cv::line(img, {box.x + 6, y}, {box.x + 28, y}, kSeriesColours[s % 10], 3, cv::LINE_AA);
        cv::putText(img, series[s].label, {box.x + 34, y + 5}, font, 0.45, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
      }
    }
  } else {
    cv::putText(img, "no finite loss recorded", {area.x + 20, area.y + 30}, font, 0.6, cv::Scalar(0, 0, 0), 1,
                cv::LINE_AA);
  }
  const std::vector<uint8_t> png = io::encode_image(".png", img);
  core::write_file_atomic(png_path, std::string(png.begin(), png.end()));
}

}  // namespace ls::train
