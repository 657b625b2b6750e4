// `lorastudio review` over a sheet folder that is full or read-only (tests/support/small_disk):
// a pick is answered with an error naming selections.json and the cause, the server keeps the
// picks it had (memory follows the disk), and selections.json keeps its bytes.
#include <signal.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "core/atomic_file.h"
#include "io/image.h"
#include "review/review_store.h"
#include "support/small_disk.h"
#include "support/support.h"

namespace review_disk_full_test {

namespace fs = std::filesystem;
using nlohmann::json;
using ls::test::DiskFault;

const std::string kRdfCellA = "a000000000000001", kRdfCellB = "b000000000000002";

// Two cells on one seed axis, their 8x8 images, and selections.json with cell A picked.
void write_rdf_sheet(const fs::path& dir) {
  json cells = json::array();
  int i = 0;
  for (const std::string& id : {kRdfCellA, kRdfCellB}) {
    cells.push_back({{"id", id}, {"coords", {{"x", i}}}, {"image", "cells/" + id + ".png"}, {"width", 8},
                     {"height", 8}, {"params", {{"prompt", "a photo"}, {"seed", i + 1}}}, {"infotext", "a photo"}});
    ++i;
  }
  const json doc = {{"format", "lorastudio-sheet"}, {"version", 1}, {"title", "disk full"},
                    {"axes", {{{"role", "x"}, {"kind", "seed"}, {"title", "seed"}, {"values", {"1", "2"}}}}},
                    {"pages", {{{"index", 0}, {"label", ""}, {"grid", "grid-000.png"}}}},
                    {"cells", cells}};
  fs::create_directories(dir / "cells");
  ls::core::write_file_atomic(dir / "sheet.json", doc.dump(2));
  for (const std::string& id : {kRdfCellA, kRdfCellB})
    ls::io::write_image((dir / ("cells/" + id + ".png")).string(), cv::Mat(8, 8, CV_8UC3, cv::Scalar(9, 99, 199)));
  ls::io::write_image((dir / "grid-000.png").string(), cv::Mat(8, 16, CV_8UC3, cv::Scalar(255, 255, 255)));
  ls::review::save_selections(dir / "selections.json", {{kRdfCellA, {ls::review::CellState::kPicked, "best"}}});
}

void expect_pick_refused(DiskFault fault, const std::string& cause) {
  ls::test::TempDir root;
  const fs::path dir = root / "sheet";
  write_rdf_sheet(dir);
  const auto before = ls::test::folder_files(dir);
  ls::test::FaultedProcess server(dir, fault, {"review", dir.string(), "--port", "0"});
  const int port = ls::test::local_server_port(server);
  ASSERT_GT(port, 0) << server.output();
  httplib::Client client("127.0.0.1", port);
  const auto put = client.Put(("/api/selections/" + kRdfCellB).c_str(), json{{"state", "picked"}}.dump(), "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 500) << put->body;
  const std::string error = json::parse(put->body).value("error", "");
  EXPECT_NE(error.find((dir / "selections.json").string() + ": cannot "), std::string::npos) << error;
  EXPECT_NE(error.find(cause), std::string::npos) << error;
  EXPECT_NE(error.find("the previous file is unchanged"), std::string::npos) << error;
  const auto got = client.Get("/api/selections");
  ASSERT_TRUE(got);
  EXPECT_EQ(json::parse(got->body)["cells"], (json{{kRdfCellA, {{"state", "picked"}, {"note", "best"}}}}));
  ASSERT_EQ(::kill(server.lorastudio_pid(), SIGTERM), 0);
  const auto r = server.wait();
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(ls::test::folder_changes(before, ls::test::folder_files(dir)), std::vector<std::string>{});
  EXPECT_EQ(ls::test::leftover_temp_files(dir), std::vector<std::string>{});
}

TEST(ReviewDiskFull, PickOnAFullDiskIsRefusedAndSelectionsStayWhole) {
  const std::string how = ls::test::disk_fault_mechanism(DiskFault::kFull);
  // No page left on the tmpfs; under RLIMIT_FSIZE no file may pass 64 bytes (selections.json has ~140).
  const uint64_t free = how == "tmpfs" ? 0 : 64;
  expect_pick_refused({DiskFault::kFull, free}, ls::test::full_disk_error_text(how));
}

TEST(ReviewDiskFull, PickInAReadOnlyFolderIsRefusedAndSelectionsStayWhole) {
  const std::string how = ls::test::disk_fault_mechanism(DiskFault::kReadOnly);
  if (how.empty()) GTEST_SKIP() << "running as root without user namespaces: no way to make a folder read-only";
  expect_pick_refused({DiskFault::kReadOnly, 0}, how == "tmpfs" ? "(Read-only file system); the filesystem is read-only"
                                                                : "(Permission denied); check that the folder is writable");
}

}  // namespace review_disk_full_test
