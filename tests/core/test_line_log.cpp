// core::LineLog and core::append_line: whole lines only — a line a killed writer cut short is
// ended before the next, and a write that fails (the file size limit standing in for a full disk)
// leaves the file byte for byte as it was, with one error line naming it.
#include <signal.h>
#include <sys/resource.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <fstream>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/line_log.h"
#include "support/support.h"

namespace line_log_test {

namespace fs = std::filesystem;

// RLIMIT_FSIZE at `bytes` for this process while in scope, SIGXFSZ ignored: write(2) past the
// limit is cut short and then fails with EFBIG, as on a disk that fills.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = old_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  sighandler_t old_handler_ = SIG_DFL;
};

void ll_put(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

TEST(LineLog, AppendsWholeLinesAndEndsACutLastLineFirst) {
  ls::test::TempDir dir;
  const fs::path file = dir / "run-log.jsonl";
  {
    ls::core::LineLog log(file);
    log.append("{\"a\":1}");
    log.append("{\"b\":2}");
  }
  EXPECT_EQ(ls::core::read_file(file), "{\"a\":1}\n{\"b\":2}\n");
  ll_put(file, "{\"a\":1}\n{\"cut");  // a writer killed mid-line
  ls::core::LineLog(file).append("{\"c\":3}");
  EXPECT_EQ(ls::core::read_file(file), "{\"a\":1}\n{\"cut\n{\"c\":3}\n");
  off_t before = -1;
  ll_put(file, "x");
  EXPECT_EQ(ls::core::append_line(file, "y", /*sync=*/true, before), 0);
  EXPECT_EQ(before, 1);
  EXPECT_EQ(ls::core::read_file(file), "x\ny\n");
}

TEST(LineLog, AFailedAppendLeavesTheFileAsItWas) {
  ls::test::TempDir dir;
  const fs::path file = dir / "sheet-log.jsonl";
  const std::string start = "{\"event\":\"start\"}\n";
  ll_put(file, start);
  const std::string line(200, 'z');
  {
    ls::core::LineLog log(file);
    FileSizeLimit limit(start.size() + 50);  // room for part of the line: a short write
    try {
      log.append(line);
      ADD_FAILURE() << "no error past the file size limit";
    } catch (const ls::Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(file.string()), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
    off_t before = -1;
    EXPECT_NE(ls::core::append_line(file, line, /*sync=*/false, before), 0);
    EXPECT_EQ(before, static_cast<off_t>(start.size()));
  }
  EXPECT_EQ(ls::core::read_file(file), start);
  // A file the failed append created is gone again.
  const fs::path fresh = dir / "new.jsonl";
  {
    FileSizeLimit limit(10);
    off_t before = -1;
    EXPECT_NE(ls::core::append_line(fresh, line, /*sync=*/true, before), 0);
  }
  EXPECT_FALSE(fs::exists(fresh));
  // Nothing to open: one error naming the file.
  EXPECT_THROW(ls::core::LineLog(dir / "missing-folder" / "log.jsonl"), ls::Error);
}

}  // namespace line_log_test
