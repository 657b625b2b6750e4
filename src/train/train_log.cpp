#include "train/train_log.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
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
  out_.open(path_, std::ios::app);
  LS_CHECK(out_.good(), path_, ": cannot open the training log for writing; check the output_dir permissions");
}

void TrainLog::append(const StepRecord& r) {
  nlohmann::json j{{"step", r.step}, {"epoch", r.epoch}, {"loss", r.loss}, {"loss_avg", r.loss_avg},
                   {"lr", r.lrs}, {"seconds", r.seconds}};
  if (r.loss_scale > 0) j["loss_scale"] = r.loss_scale;
  if (r.skipped) j["skipped"] = true;
  if (!std::isfinite(r.loss)) j["loss"] = nullptr;  // JSON has no NaN
  out_ << j.dump() << "\n";
  out_.flush();  // a killed run keeps every finished step
}

void TrainLog::event(const std::string& json_object_text) {
  out_ << json_object_text << "\n";
  out_.flush();
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

void write_loss_curve(const std::string& png_path, const std::vector<StepRecord>& records, int width, int height,
                      int window) {
  std::vector<std::pair<double, double>> pts;  // (step, loss), finite only
  for (const auto& r : records)
    if (std::isfinite(r.loss)) pts.emplace_back(static_cast<double>(r.step), r.loss);
  cv::Mat img(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int left = 80, right = 20, top = 40, bottom = 50;
  const cv::Rect area(left, top, width - left - right, height - top - bottom);
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  cv::putText(img, "training loss (thin: per step, thick: mean of " + std::to_string(window) + ")",
              {left, 25}, font, 0.5, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::rectangle(img, area, cv::Scalar(0, 0, 0), 1);
  if (!pts.empty()) {
    double x0 = pts.front().first, x1 = pts.back().first;
    double y0 = pts.front().second, y1 = y0;
    for (const auto& p : pts) y0 = std::min(y0, p.second), y1 = std::max(y1, p.second);
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
    std::vector<cv::Point> raw, mean;
    double sum = 0;
    for (size_t i = 0; i < pts.size(); ++i) {
      raw.push_back(map(pts[i].first, pts[i].second));
      sum += pts[i].second;
      if (i >= static_cast<size_t>(window)) sum -= pts[i - window].second;
      const double n = static_cast<double>(std::min<size_t>(i + 1, window));
      mean.push_back(map(pts[i].first, sum / n));
    }
    cv::polylines(img, raw, false, cv::Scalar(150, 190, 240), 1, cv::LINE_AA);  // RGB: light blue
    cv::polylines(img, mean, false, cv::Scalar(20, 60, 170), 2, cv::LINE_AA);
  } else {
    cv::putText(img, "no finite loss recorded", {area.x + 20, area.y + 30}, font, 0.6, cv::Scalar(0, 0, 0), 1,
                cv::LINE_AA);
  }
  const std::vector<uint8_t> png = io::encode_image(".png", img);
  core::write_file_atomic(png_path, std::string(png.begin(), png.end()));
}

}  // namespace ls::train
