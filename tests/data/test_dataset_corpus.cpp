// The dataset scan over the damaged-image corpus (tests/support/image_corpus.h) in one subset
// folder: the scan never throws, every file that cannot be trained on is one error finding that
// names it (a folder named like an image a warning), every valid image is indexed at its size, and
// nothing is both. Header-only and full-decode scans both hold it: the full decode may refuse more
// of the damage a structure check cannot see (a flipped byte inside JPEG entropy data), never less.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "data/dataset.h"
#include "support/image_corpus.h"
#include "support/support.h"

namespace dataset_corpus_test {

namespace fs = std::filesystem;
using ls::test::CorpusEntry;
using Expect = CorpusEntry::Expect;

struct CorpusScan {
  std::map<std::string, const ls::data::ImageRecord*> indexed;  // by file name
  std::map<std::string, ls::data::Finding> findings;             // problems by file name (the first)
  ls::data::DatasetIndex index;
  ls::data::Findings all;
};

CorpusScan scan_corpus(const fs::path& dir, bool decode) {
  ls::data::DatasetConfig config;
  config.buckets.resolution = {256, 256};
  ls::data::SubsetConfig subset;
  subset.image_dir = dir.string();
  subset.num_repeats = 1;
  subset.class_tokens = "sks";
  config.subsets = {subset};
  ls::data::ScanOptions options;
  options.decode = decode;
  CorpusScan s;
  s.index = ls::data::index_dataset(config, s.all, options);  // not inside EXPECT_NO_THROW: the test ends on a throw
  for (const auto& r : s.index.images) s.indexed[fs::path(r.path).filename().string()] = &r;
  for (const auto& f : s.all)
    if (f.severity == ls::data::Severity::kError || f.code == "not_a_file")  // not the caption notes
      s.findings.emplace(fs::path(f.path).filename().string(), f);
  return s;
}

void expect_corpus_scan(const std::vector<CorpusEntry>& corpus, const CorpusScan& s, const fs::path& dir) {
  for (const CorpusEntry& e : corpus) {
    SCOPED_TRACE(e.name);
    const bool indexed = s.indexed.count(e.name) > 0;
    const auto finding = s.findings.find(e.name);
    const bool refused = finding != s.findings.end() && finding->second.severity == ls::data::Severity::kError;
    EXPECT_FALSE(indexed && refused) << "indexed and refused";
    if (finding != s.findings.end()) {
      EXPECT_NE(finding->second.message.find((dir / e.name).string()), std::string::npos) << finding->second.message;
      EXPECT_EQ(finding->second.message.find('\n'), std::string::npos) << finding->second.message;
    }
    if (e.folder) {
      EXPECT_FALSE(indexed);
      ASSERT_NE(finding, s.findings.end());
      EXPECT_EQ(finding->second.code, "not_a_file");
    } else if (e.expect == Expect::kImage) {
      ASSERT_TRUE(indexed) << (finding != s.findings.end() ? finding->second.message : "no finding");
      EXPECT_EQ(s.indexed.at(e.name)->size.width, e.width);
      EXPECT_EQ(s.indexed.at(e.name)->size.height, e.height);
    } else if (e.expect == Expect::kRefused) {
      EXPECT_TRUE(refused) << "not refused";
    } else {
      EXPECT_TRUE(indexed || refused) << "neither indexed nor refused";
    }
  }
}

TEST(DatasetCorpus, EveryDamagedFileIsOneNamedFindingAndTheScanGoesOn) {
  ls::test::TempDir tmp;
  const fs::path dir = tmp / "1_corpus";
  const auto corpus = ls::test::image_corpus();
  ls::test::write_corpus(dir, corpus);
  const CorpusScan headers = scan_corpus(dir, /*decode=*/false);
  expect_corpus_scan(corpus, headers, dir);
  const CorpusScan decoded = scan_corpus(dir, /*decode=*/true);
  expect_corpus_scan(corpus, decoded, dir);
  size_t valid = 0;
  for (const CorpusEntry& e : corpus) valid += e.expect == Expect::kImage;
  EXPECT_GE(headers.index.images.size(), valid);
  EXPECT_GE(headers.index.images.size(), decoded.index.images.size());  // decoding only refuses more
  for (const auto& [name, record] : decoded.indexed) EXPECT_TRUE(headers.indexed.count(name)) << name;
  std::printf("[corpus scan] %zu files: %zu indexed from headers, %zu after decoding, %zu findings\n", corpus.size(),
              headers.index.images.size(), decoded.index.images.size(), decoded.all.size());
}

}  // namespace dataset_corpus_test
