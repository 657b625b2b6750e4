// Dataset checks: the scan's findings plus a full decode of every image (corruption), exact and
// perceptual duplicates, enlargement to the bucket, caption token counts; then the summary.
#include "data/doctor.h"

#include <algorithm>
#include <map>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "data/phash.h"
#include "text/clip_tokenizer.h"

namespace ls::data {
namespace {

// Fed by the scan with each decoded image: exact duplicates (content hash), enlargement, and
// the perceptual hashes compared afterwards.
struct ImageChecks {
  struct Seen {
    std::string path;
    uint64_t phash;
  };
  std::vector<Seen> seen;
  std::map<std::string, std::string> by_content;  // content hash -> first path

  void add(const ImageRecord& rec, const cv::Mat& rgb, Findings& findings) {
    auto [it, fresh] = by_content.emplace(rec.content_hash, rec.path);
    if (!fresh && it->second != rec.path)
      findings.push_back({Severity::kWarning, "duplicate_image", rec.path,
                          str_cat(rec.path, ": same bytes as ", it->second,
                                  "; it trains twice as often as intended, delete one")});
    const Reso& resized = rec.bucket.resized;
    if (resized.width > rec.size.width || resized.height > rec.size.height)
      findings.push_back({Severity::kWarning, "upscaled", rec.path,
                          str_cat(rec.path, ": ", rec.size.width, "x", rec.size.height, " is enlarged to ",
                                  reso_text(resized), " for bucket ", reso_text(rec.bucket.bucket),
                                  "; it will look soft, use a larger original or a lower resolution")});
    if (fresh) seen.push_back({rec.path, perceptual_hash(rgb)});
  }

  void report_near_duplicates(int max_distance, Findings& findings) const {
    std::vector<uint64_t> hashes;
    for (const Seen& s : seen) hashes.push_back(s.phash);
    for (const NearDuplicate& nd : find_near_duplicates(hashes, max_distance))
      findings.push_back({Severity::kWarning, "near_duplicate", seen[nd.b].path,
                          str_cat(seen[nd.b].path, ": looks like ", seen[nd.a].path, " (perceptual distance ",
                                  nd.distance, " of 64); near-identical images over-train that look")});
  }
};

void check_captions(const std::vector<DatasetIndex>& datasets, const CheckOptions& options, Findings& findings) {
  if (options.tokenizer.empty()) {
    findings.push_back({Severity::kInfo, "tokens_not_checked", "",
                        "caption lengths were not checked; pass --tokenizer (CLIP bpe_simple_vocab_16e6.txt.gz or a "
                        "tokenizer folder) to count tokens"});
    return;
  }
  const text::ClipTokenizer tokenizer = text::ClipTokenizer::from_file(options.tokenizer);
  for (const DatasetIndex& d : datasets)
    for (const ImageRecord& rec : d.images) {
      const SubsetConfig& s = d.config.subsets.at(static_cast<size_t>(rec.subset));
      const size_t n = tokenizer.encode(with_prefix_suffix(rec.caption, s.caption)).size();
      if (n > 225)
        findings.push_back({Severity::kWarning, "caption_over_225_tokens", rec.path,
                            str_cat(rec.path, ": caption has ", n, " tokens; SDXL training reads at most 225",
                                    " (max_token_length 225), the rest is cut: shorten it")});
      else if (n > 75)
        findings.push_back({Severity::kInfo, "caption_over_75_tokens", rec.path,
                            str_cat(rec.path, ": caption has ", n, " tokens; beyond 75 it needs max_token_length ",
                                    n > 150 ? 225 : 150, ", else it is cut at 75")});
    }
}

DatasetReport summarize(const DatasetIndex& d, const CheckOptions& options) {
  DatasetReport r;
  r.batch_size = options.batch_size > 0 ? options.batch_size : d.config.batch_size;
  r.steps_per_epoch = steps_per_epoch(d, r.batch_size);
  for (const SubsetConfig& s : d.config.subsets) r.subsets.push_back({s.image_dir, s.is_reg, 0, s.num_repeats, 0, 0});
  std::map<Reso, BucketCount> buckets;
  for (const ImageRecord& rec : d.images) {
    SubsetReport& sr = r.subsets.at(static_cast<size_t>(rec.subset));
    ++sr.images;
    sr.images_per_epoch += rec.num_repeats;
    sr.captions_from_files += rec.caption_file ? 1 : 0;
    if (rec.num_repeats <= 0) continue;
    BucketCount& b = buckets[rec.bucket.bucket];
    b.reso = rec.bucket.bucket;
    ++b.images;
    b.images_per_epoch += rec.num_repeats;
  }
  for (const auto& [reso, count] : buckets) r.buckets.push_back(count);
  return r;
}

}  // namespace

CheckReport check_dataset(const DataConfig& config, Findings findings, const CheckOptions& options) {
  CheckReport report;
  report.source = config.source;
  ImageChecks images;
  Findings image_findings;
  ScanOptions scan;
  scan.decode = true;
  scan.show_progress = options.show_progress;
  scan.on_decoded = [&](const ImageRecord& rec, const cv::Mat& rgb) { images.add(rec, rgb, image_findings); };
  const std::vector<DatasetIndex> datasets = index_datasets(config, findings, scan);
  images.report_near_duplicates(options.near_duplicate_distance, image_findings);
  findings.insert(findings.end(), image_findings.begin(), image_findings.end());
  check_captions(datasets, options, findings);
  for (const DatasetIndex& d : datasets) {
    report.datasets.push_back(summarize(d, options));
    report.steps_per_epoch += report.datasets.back().steps_per_epoch;
  }
  std::stable_sort(findings.begin(), findings.end(),
                   [](const Finding& a, const Finding& b) { return a.severity > b.severity; });
  report.findings = std::move(findings);
  return report;
}

nlohmann::json report_json(const CheckReport& report) {
  nlohmann::json j;
  j["source"] = report.source;
  j["ok"] = report.ok();
  j["steps_per_epoch"] = report.steps_per_epoch;
  j["errors"] = count_findings(report.findings, Severity::kError);
  j["warnings"] = count_findings(report.findings, Severity::kWarning);
  j["datasets"] = nlohmann::json::array();
  for (const DatasetReport& d : report.datasets) {
    nlohmann::json jd{{"batch_size", d.batch_size}, {"steps_per_epoch", d.steps_per_epoch}};
    jd["subsets"] = nlohmann::json::array();
    for (const SubsetReport& s : d.subsets)
      jd["subsets"].push_back({{"image_dir", s.image_dir}, {"is_reg", s.is_reg}, {"images", s.images},
                               {"num_repeats", s.num_repeats}, {"images_per_epoch", s.images_per_epoch},
                               {"captions_from_files", s.captions_from_files}});
    jd["buckets"] = nlohmann::json::array();
    for (const BucketCount& b : d.buckets)
      jd["buckets"].push_back({{"width", b.reso.width}, {"height", b.reso.height}, {"images", b.images},
                               {"images_per_epoch", b.images_per_epoch}});
    j["datasets"].push_back(jd);
  }
  j["findings"] = nlohmann::json::array();
  for (const Finding& f : report.findings)
    j["findings"].push_back(
        {{"severity", severity_name(f.severity)}, {"code", f.code}, {"path", f.path}, {"message", f.message}});
  return j;
}

std::string report_text(const CheckReport& report) {
  std::ostringstream out;
  out << "dataset " << report.source << "\n";
  for (size_t i = 0; i < report.datasets.size(); ++i) {
    const DatasetReport& d = report.datasets[i];
    out << "dataset #" << i + 1 << ": batch size " << d.batch_size << ", " << d.steps_per_epoch << " steps per epoch\n";
    for (const SubsetReport& s : d.subsets)
      out << "  " << (s.is_reg ? "reg   " : "train ") << s.image_dir << ": " << s.images << " images x "
          << s.num_repeats << " repeats -> " << s.images_per_epoch << " per epoch, " << s.captions_from_files
          << " caption files\n";
    int64_t most = 1;
    for (const BucketCount& b : d.buckets) most = std::max(most, b.images_per_epoch);
    out << "  buckets (images per epoch):\n";
    for (const BucketCount& b : d.buckets)
      out << "    " << reso_text(b.reso) << std::string(b.reso.width < 1000 ? 2 : 1, ' ')
          << (b.reso.height < 1000 ? " " : "") << std::string(static_cast<size_t>(1 + 40 * b.images_per_epoch / most), '#')
          << " " << b.images_per_epoch << " (" << b.images << " images)\n";
  }
  for (const Finding& f : report.findings) out << severity_name(f.severity) << ": " << f.message << "\n";
  out << count_findings(report.findings, Severity::kError) << " errors, "
      << count_findings(report.findings, Severity::kWarning) << " warnings; "
      << (report.ok() ? "ready to train" : "fix the errors before training") << "\n";
  return out.str();
}

}  // namespace ls::data
