// The caption editor's request parsing and bulk operations (caption/caption_requests,
// caption/caption_bulk), including the inputs fuzz/fuzz_captions_requests found
// (tests/fixtures/fuzz/fuzz_captions_requests).
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
  EXPECT_NE(ls::test::error_of([] { ls::caption::compile_bulk_regex(std::string(300, 'a')); }).find("at most 256"),
            std::string::npos);
  EXPECT_NE(ls::test::error_of([] { ls::caption::compile_bulk_regex("(a"); }).find("not a valid regular expression"),
            std::string::npos);
  const auto re = ls::caption::compile_bulk_regex("(\\w+) circle");
  ls::caption::BulkOp op;
  op.kind = ls::caption::BulkKind::kRegexReplace;
  op.find = "(\\w+) circle";
  op.replace = "$1 disc";
  EXPECT_EQ(apply_bulk_op(op, "red circle, x\n", &re), "red disc, x\n");
  // Matching by recursion over a 20,000-byte caption overflowed the stack (a crash of the whole
  // server); a caption over the limit is now refused by name instead.
  op.find = "(a|b)*";
  const auto deep = ls::caption::compile_bulk_regex(op.find);
  EXPECT_NE(ls::test::error_of([&] { apply_bulk_op(op, std::string(20000, 'a'), &deep); }).find("over the 4096"),
            std::string::npos);
  op.replace = "x";
  EXPECT_EQ(apply_bulk_op(op, std::string(4096, 'a'), &deep), "xx");  // the run, then "" at the end
}

// crash-c71df437: a back-reference of 23 nines, "(\\999...w?+) cle", made libstdc++'s regex compiler overflow a long
// reading the back-reference number (UBSan); numbers after '\\' and in "{n,m}" are now bounded.
TEST(CaptionRequests, RegexNumbersAreBounded) {
  const std::string crash = ls::core::read_file(std::string(ls::test::kSourceDir) +
                                                "/tests/fixtures/fuzz/fuzz_captions_requests/crash-c71df4372673c683ab3441fa6bb467f03d9bb615");
  const json body = json::parse(crash.substr(1));
  const std::string find = body.at("find");
  EXPECT_NE(ls::test::error_of([&] { ls::caption::compile_bulk_regex(find); }).find("holds a number of 23 digits after '\\'"),
            std::string::npos);
  EXPECT_NE(ls::test::error_of([] { ls::caption::compile_bulk_regex("a{1,12345678901}"); }).find("11 digits after '{'"),
            std::string::npos);
  EXPECT_EQ(ls::test::error_of([] { ls::caption::compile_bulk_regex("(a)\\1 {2,3} x{1,99}"); }), "");
  // Nine digits are safe to read; so large a count then meets libstdc++'s limit of 100,000 states.
  EXPECT_NE(ls::test::error_of([] { ls::caption::compile_bulk_regex("x{1,999999999}"); }).find("not a valid regular"),
            std::string::npos);
  EXPECT_EQ(ls::test::error_of([] { ls::caption::compile_bulk_regex("20241204123456789012"); }), "");  // a literal
}

}  // namespace caption_requests_test
