// The caption editor's request parsing and bulk operations (caption/caption_requests,
// caption/caption_bulk), including the inputs fuzz/fuzz_captions_requests found
// (tests/fixtures/fuzz/fuzz_captions_requests).
#include <chrono>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "caption/caption_bulk.h"
#include "caption/caption_requests.h"
#include "core/atomic_file.h"
#include "support/support.h"
#include "test_paths.h"

namespace caption_requests_test {

using json = nlohmann::json;
using ls::caption::apply_bulk_op;
using ls::caption::BulkRequest;
using ls::caption::parse_bulk_request;

BulkRequest bulk_of(const std::string& text) {
  BulkRequest r;
  EXPECT_EQ(parse_bulk_request(json::parse(text), r), "") << text;
  return r;
}

// crash-65156d49...: add_tag with "a, q" added one "tag" that the caption then reads as two, so
// a second add put both in again. Each tag the text names is added once, so adding is idempotent.
TEST(CaptionRequests, AddingATagThatHoldsACommaIsIdempotent) {
  const std::string input = ls::core::read_file(std::string(ls::test::kSourceDir) +
      "/tests/fixtures/fuzz/fuzz_captions_requests/crash-65156d49c438d61844c48085aaea61b5520af34b");
  ASSERT_EQ(input[0] % 4, 2);  // the fuzz target's bulk selector
  const BulkRequest r = bulk_of(input.substr(1));
  const std::string once = apply_bulk_op(r.op, "x, a\n", nullptr);
  EXPECT_EQ(once, "x, a, q\n");
  EXPECT_EQ(apply_bulk_op(r.op, once, nullptr), once);
  const BulkRequest prefix = bulk_of(R"({"op": "add_prefix", "ids": "all", "tag": "masterpiece, best quality, b"})");
  EXPECT_EQ(apply_bulk_op(prefix.op, "a, b", nullptr), "masterpiece, best quality, a, b");
}

TEST(CaptionRequests, RenamingToSeveralTagsKeepsEachOnce) {
  const BulkRequest r = bulk_of(R"({"op": "rename_tag", "ids": "all", "from": "a", "to": "a, b, c"})");
  const std::string once = apply_bulk_op(r.op, "b, a, d\n", nullptr);
  EXPECT_EQ(once, "b, a, c, d\n");  // b kept at its first place, a -> a, (b), c
  EXPECT_EQ(apply_bulk_op(r.op, once, nullptr), once);
  const BulkRequest plain = bulk_of(R"({"op": "rename_tag", "ids": "all", "from": "red", "to": "blue"})");
  EXPECT_EQ(apply_bulk_op(plain.op, "blue, x, red", nullptr), "blue, x");  // both held: the first kept
}

TEST(CaptionRequests, BodiesAreCheckedBeforeAnyWrite) {
  BulkRequest r;
  EXPECT_NE(parse_bulk_request(json::parse(R"({"op": "dedupe"})"), r), "");
  EXPECT_NE(parse_bulk_request(json::parse(R"({"op": "dedupe", "ids": [1]})"), r), "");
  EXPECT_NE(parse_bulk_request(json::parse(R"({"op": "shuffle", "ids": "all"})"), r).find("find_replace"), std::string::npos);
  EXPECT_NE(parse_bulk_request(json::array(), r), "");
  ls::caption::CaptionEdit edit;
  EXPECT_EQ(ls::caption::parse_caption_edit(json{{"id", "0:a.png"}, {"text", "x"}, {"hash", ""}}, edit), "");
  EXPECT_EQ(edit.text, "x");
  EXPECT_NE(ls::caption::parse_caption_edit(json{{"id", "0:a.png"}, {"text", 1}, {"hash", ""}}, edit), "");
  std::vector<std::pair<size_t, std::string>> runs;
  EXPECT_EQ(ls::caption::parse_undo_request(json::parse(R"({"runs": [{"root": 1, "run": "r"}]})"), runs), "");
  EXPECT_EQ(runs, (std::vector<std::pair<size_t, std::string>>{{1, "r"}}));
  EXPECT_NE(ls::caption::parse_undo_request(json::parse(R"({"runs": [{"root": -1, "run": "r"}]})"), runs), "");
  EXPECT_TRUE(runs.empty());
  EXPECT_EQ(ls::caption::parse_image_id("12:a/b.png"), (std::make_pair(size_t(12), std::string("a/b.png"))));
  for (const char* bad : {"a.png", ":a.png", "1234567:a.png", "x1:a.png"}) EXPECT_FALSE(ls::caption::parse_image_id(bad)) << bad;
}

TEST(CaptionRequests, RegexesAreBounded) {
  using ls::caption::BulkRegex;
  EXPECT_NE(ls::test::error_of([] { BulkRegex(std::string(300, 'a')); }).find("at most 256"), std::string::npos);
  EXPECT_NE(ls::test::error_of([] { BulkRegex("(a"); }).find("not a valid regular expression"), std::string::npos);
  ls::caption::BulkOp op;
  op.kind = ls::caption::BulkKind::kRegexReplace;
  op.find = "(\\w+) circle";
  op.replace = "$1 disc";
  const BulkRegex re(op.find);
  EXPECT_EQ(apply_bulk_op(op, "red circle, x\n", &re), "red disc, x\n");
  op.replace = "${1}s ($0) $$";
  EXPECT_EQ(apply_bulk_op(op, "red circle", &re), "reds (red circle) $");
  op.replace = "$2";  // a group the pattern lacks: refused, before any file changes (the store plans first)
  EXPECT_NE(ls::test::error_of([&] { apply_bulk_op(op, "red circle", &re); }).find("cannot be applied"), std::string::npos);
  op.replace = "$2";
  EXPECT_EQ(apply_bulk_op(op, "no match here", &re), "no match here");
  // libstdc++'s std::regex matched by recursion: "(a|b)*" over 20,000 bytes overflowed the stack
  // (a crash of the whole server). PCRE2 backtracks on the heap: long captions match.
  op.find = "(a|b)*";
  op.replace = "x";
  const BulkRegex star(op.find);
  EXPECT_EQ(apply_bulk_op(op, std::string(20000, 'a'), &star), "xx");  // the run, then "" at the end
  // UTF-8: '.' is one character; bytes that are not UTF-8 match nothing and stay.
  op.find = "caf.";
  op.replace = "tea";
  const BulkRegex utf(op.find);
  EXPECT_EQ(apply_bulk_op(op, "caf\xc3\xa9, \xff", &utf), "tea, \xff");
}

// fuzz_captions_requests ran past its 10 s limit on a pattern of nested repeats: backtracking is
// exponential in the worst case (std::regex had no bound). Each caption now has a step budget,
// so the classic catastrophic patterns end in an error naming the pattern within moments.
TEST(CaptionRequests, BacktrackingIsBounded) {
  ls::caption::BulkOp op;
  op.kind = ls::caption::BulkKind::kRegexReplace;
  op.replace = "x";
  // Holding what each pattern must end with, or PCRE2 sees at once that nothing can match.
  const std::string subject = std::string(64, 'a') + ",bx!";
  for (const char* pattern : {"(a*)*b", "(a|a)*b", "(a|aa)+$x", "^(\\w+\\s?)*$!"}) {
    op.find = pattern;
    const ls::caption::BulkRegex re(pattern);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_NE(ls::test::error_of([&] { apply_bulk_op(op, subject, &re); }).find("matching steps"),
              std::string::npos)
        << pattern;
    // 10^6 steps are ~0.1 s on this project's 2-core machine; 30 s leaves room for any sanitizer or emulator.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30)) << pattern;
  }
}

// crash-c71df437: a back-reference of 23 nines, "(\\999...w?+) cle", made libstdc++'s regex
// compiler overflow a long (UBSan). PCRE2 reads numbers with a bound: "\\999..." with no such
// group is literal digits (Perl's rule), and a count over 65535 is an invalid pattern.
TEST(CaptionRequests, RegexNumbersAreBounded) {
  using ls::caption::BulkRegex;
  const std::string crash = ls::core::read_file(std::string(ls::test::kSourceDir) +
                                                "/tests/fixtures/fuzz/fuzz_captions_requests/crash-c71df4372673c683ab3441fa6bb467f03d9bb615");
  const json body = json::parse(crash.substr(1));
  ls::caption::BulkOp op;
  op.kind = ls::caption::BulkKind::kRegexReplace;
  op.find = body.at("find");
  op.replace = body.at("replace");
  const std::string error = ls::test::error_of([&] {
    const BulkRegex re(op.find);
    EXPECT_EQ(apply_bulk_op(op, "red circle", &re), "red circle");
  });
  EXPECT_TRUE(error.empty() || error.find("not a valid regular expression") != std::string::npos) << error;
  EXPECT_NE(ls::test::error_of([] { BulkRegex("a{1,12345678901}"); }).find("not a valid regular"), std::string::npos);
  EXPECT_NE(ls::test::error_of([] { BulkRegex("x{1,999999999}"); }).find("not a valid regular"), std::string::npos);
  EXPECT_EQ(ls::test::error_of([] { BulkRegex("(a)\\1 {2,3} x{1,99}"); }), "");
  EXPECT_EQ(ls::test::error_of([] { BulkRegex("20241204123456789012"); }), "");  // a literal
}

}  // namespace caption_requests_test
