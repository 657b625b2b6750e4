// A1111 prompt emphasis and chunking: parse_prompt_attention's docstring examples plus cases worked
// out from its rules (AUTOMATIC1111/stable-diffusion-webui modules/prompt_parser.py), and
// tokenize_line's chunks, BREAK and comma backtracking (modules/sd_hijack_clip.py).
#include <gmock/gmock.h>

#include "core/error.h"
#include "support/support.h"
#include "text/prompt_attention.h"

namespace {

using ls::text::ClipTokenizer;
using ls::text::parse_prompt_attention;
using ls::text::PromptChunk;
using Pieces = std::vector<ls::text::PromptPiece>;
using Ids = std::vector<int64_t>;
constexpr int64_t kBos = 49406, kEos = 49407;
const double kUp = 1.1, kDown = 1 / 1.1;

const ClipTokenizer& attention_tokenizer() {
  static const ClipTokenizer tok = ClipTokenizer::from_file(ls::test::kClipVocab);
  return tok;
}

int64_t id(const std::string& word) {
  auto ids = attention_tokenizer().encode(word);
  EXPECT_EQ(ids.size(), 1u) << word;
  return ids.at(0);
}

std::string repeat(const std::string& word, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += word + " ";
  return s;
}

// The chunk's prompt tokens (padding must be end ids with weight 1).
Ids body(const PromptChunk& c) {
  for (int i = c.tokens; i < ls::text::kWindowBody; ++i) {
    EXPECT_EQ(c.ids[i], kEos);
    EXPECT_EQ(c.weights[i], 1.0);
  }
  return Ids(c.ids.begin(), c.ids.begin() + c.tokens);
}
std::vector<double> weights(const PromptChunk& c) { return {c.weights.begin(), c.weights.begin() + c.tokens}; }
Ids ids_n(int64_t token, int n) { return Ids(n, token); }
Ids cat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(PromptAttention, DocstringExamples) {
  EXPECT_EQ(parse_prompt_attention("normal text"), (Pieces{{"normal text", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("an (important) word"), (Pieces{{"an ", 1.0}, {"important", 1.1}, {" word", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("(unbalanced"), (Pieces{{"unbalanced", 1.1}}));
  EXPECT_EQ(parse_prompt_attention("\\(literal\\]"), (Pieces{{"(literal]", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("(unnecessary)(parens)"), (Pieces{{"unnecessaryparens", 1.1}}));
  // house: 1.3 (its own ":1.3)"), x1.1 (")"), x1.1 (the "(" left open); "on": 1/1.1 then x1.1 = 1;
  // sky: three ")" and the open "(", in that order. Exact doubles as Python prints them.
  EXPECT_EQ(parse_prompt_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."),
            (Pieces{{"a ", 1.0},
                    {"house", 1.5730000000000004},
                    {" ", 1.1},
                    {"on", 1.0},
                    {" a ", 1.1},
                    {"hill", 0.55},
                    {", sun, ", 1.1},
                    {"sky", 1.4641000000000006},
                    {".", 1.1}}));
}

TEST(PromptAttention, NestingAndUnbalancedBrackets) {
  EXPECT_EQ(parse_prompt_attention("(((a)))"), (Pieces{{"a", 1.0 * kUp * kUp * kUp}}));
  EXPECT_EQ(parse_prompt_attention("(((a)))"), (Pieces{{"a", 1.3310000000000004}}));
  EXPECT_EQ(parse_prompt_attention("[[a]]"), (Pieces{{"a", 0.8264462809917354}}));
  EXPECT_EQ(parse_prompt_attention("[a"), (Pieces{{"a", kDown}}));
  EXPECT_EQ(parse_prompt_attention("((a)"), (Pieces{{"a", 1.2100000000000002}}));
  EXPECT_EQ(parse_prompt_attention("([a)]"), (Pieces{{"a", 1.0}}));  // 1.1 then 1/1.1: exactly 1
  EXPECT_EQ(parse_prompt_attention("([cat])"), (Pieces{{"cat", 1.0}}));
  // Closing brackets with nothing open are text; so is ":w)" outside "(".
  EXPECT_EQ(parse_prompt_attention("a) b] c"), (Pieces{{"a) b] c", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("x:1.2) y"), (Pieces{{"x:1.2) y", 1.0}}));
  // "[(a:2]": ":2]" is no weight; "]" closes the square bracket, the open "(" applies at the end.
  EXPECT_EQ(parse_prompt_attention("[(a:2]"), (Pieces{{"a:2", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("()"), (Pieces{{"", 1.0}}));
  EXPECT_EQ(parse_prompt_attention(""), (Pieces{{"", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("(x:2)(y:2)"), (Pieces{{"xy", 2.0}}));  // equal neighbours merge
}

TEST(PromptAttention, ExplicitWeights) {
  EXPECT_EQ(parse_prompt_attention("(w:-0.5)"), (Pieces{{"w", -0.5}}));
  EXPECT_EQ(parse_prompt_attention("(w:+.5)"), (Pieces{{"w", 0.5}}));
  EXPECT_EQ(parse_prompt_attention("(w:1.)"), (Pieces{{"w", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("a (b:1.2) c"), (Pieces{{"a ", 1.0}, {"b", 1.2}, {" c", 1.0}}));
  // A blank after ':' makes it text, and ")" then gives 1.1.
  EXPECT_EQ(parse_prompt_attention("(word: 1.2)"), (Pieces{{"word: 1.2", 1.1}}));
  // Python's \d and float() take any Unicode decimal digit: U+0661 '.' U+0665 is 1.5.
  EXPECT_EQ(parse_prompt_attention("(a:\u0661.\u0665)"), (Pieces{{"a", 1.5}}));
  // float('1.2.3') and float('.') raise ValueError in A1111.
  EXPECT_THAT(ls::test::error_of([] { parse_prompt_attention("(w:1.2.3)"); }),
              ::testing::HasSubstr("'1.2.3' is not a number"));
  EXPECT_THROW(parse_prompt_attention("(w:.)"), ls::Error);
  EXPECT_EQ(parse_prompt_attention("w:.)"), (Pieces{{"w:.)", 1.0}}));  // no "(": text, no float()
}

TEST(PromptAttention, Escapes) {
  EXPECT_EQ(parse_prompt_attention("a\\\\b\\(c\\)"), (Pieces{{"a\\b(c)", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("a\\b"), (Pieces{{"ab", 1.0}}));  // a lone backslash vanishes
  EXPECT_EQ(parse_prompt_attention("a\\"), (Pieces{{"a", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("\\\\(x)"), (Pieces{{"\\", 1.0}, {"x", 1.1}}));
  EXPECT_EQ(parse_prompt_attention("\\[x\\]:"), (Pieces{{"[x]:", 1.0}}));
}

TEST(PromptAttention, Break) {
  EXPECT_EQ(parse_prompt_attention("a BREAK b"), (Pieces{{"a", 1.0}, {"BREAK", -1.0}, {"b", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("BREAK"), (Pieces{{"", 1.0}, {"BREAK", -1.0}, {"", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("a\nBREAK\tb"), (Pieces{{"a", 1.0}, {"BREAK", -1.0}, {"b", 1.0}}));
  // Blanks go with the BREAK; two in a row leave an empty piece between them.
  EXPECT_EQ(parse_prompt_attention("a  BREAK\t BREAK b"),
            (Pieces{{"a", 1.0}, {"BREAK", -1.0}, {"", 1.0}, {"BREAK", -1.0}, {"b", 1.0}}));
  // Only the whole word, with \w in Python's Unicode sense (letters, digits, '_').
  EXPECT_EQ(parse_prompt_attention("a BREAKb BREAK_ xBREAK BREAK, c"),
            (Pieces{{"a BREAKb BREAK_ xBREAK", 1.0}, {"BREAK", -1.0}, {", c", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("\u00e9BREAK \u00e9 BREAK"),
            (Pieces{{"\u00e9BREAK \u00e9", 1.0}, {"BREAK", -1.0}, {"", 1.0}}));
  EXPECT_EQ(parse_prompt_attention("a (b:1.2) BREAK (c)"),
            (Pieces{{"a ", 1.0}, {"b", 1.2}, {"", 1.0}, {"BREAK", -1.0}, {"", 1.0}, {"c", 1.1}}));
  // Inside brackets the BREAK piece is multiplied too, and then it is no BREAK any more.
  EXPECT_EQ(parse_prompt_attention("(a BREAK b)"), (Pieces{{"a", 1.1}, {"BREAK", -1.1}, {"b", 1.1}}));
  EXPECT_EQ(parse_prompt_attention("a (BREAK) b"), (Pieces{{"a ", 1.0}, {"", 1.1}, {"BREAK", -1.1}, {"", 1.1},
                                                           {" b", 1.0}}));
}

TEST(PromptChunks, EmptyPromptIsOnePaddedChunk) {
  auto chunks = ls::text::chunk_prompt(attention_tokenizer(), "");
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(body(chunks[0]), Ids{});
  auto te1 = ls::text::chunk_window(chunks[0], kEos), te2 = ls::text::chunk_window(chunks[0], 0);
  Ids expect1(77, kEos), expect2(77, 0);
  expect1[0] = expect2[0] = kBos;
  expect2[1] = kEos;
  EXPECT_EQ(Ids(te1.begin(), te1.end()), expect1);
  EXPECT_EQ(Ids(te2.begin(), te2.end()), expect2);
  for (double w : ls::text::chunk_weights(chunks[0])) EXPECT_EQ(w, 1.0);
}

TEST(PromptChunks, PiecesAreTokenizedWithTheirWeights) {
  auto chunks = ls::text::chunk_prompt(attention_tokenizer(), "a (red cat:1.5) [dog], sun");
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(body(chunks[0]), (Ids{id("a"), id("red"), id("cat"), id("dog"), id(","), id("sun")}));
  EXPECT_EQ(weights(chunks[0]), (std::vector<double>{1, 1.5, 1.5, kDown, 1, 1}));
  auto w = ls::text::chunk_weights(chunks[0]);
  EXPECT_EQ(w[0], 1.0);
  EXPECT_EQ(w[3], 1.5);
  EXPECT_EQ(w[4], kDown);
  EXPECT_EQ(w[76], 1.0);
  // TE2: everything after the first end id is pad, even a typed <|endoftext|> in the body.
  auto typed = ls::text::chunk_prompt(attention_tokenizer(), "cat <|endoftext|> dog");
  EXPECT_EQ(body(typed[0]), (Ids{id("cat"), kEos, id("dog")}));
  auto te2 = ls::text::chunk_window(typed[0], 0);
  EXPECT_EQ(Ids(te2.begin(), te2.begin() + 5), (Ids{kBos, id("cat"), kEos, 0, 0}));
  EXPECT_EQ(te2[76], 0);
  auto te1 = ls::text::chunk_window(typed[0], kEos);
  EXPECT_EQ(Ids(te1.begin(), te1.begin() + 5), (Ids{kBos, id("cat"), kEos, id("dog"), kEos}));
}

TEST(PromptChunks, LongPromptsFillChunksOf75) {
  auto chunks = ls::text::chunk_prompt(attention_tokenizer(), repeat("cat", 100));
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(body(chunks[0]), ids_n(id("cat"), 75));
  EXPECT_EQ(body(chunks[1]), ids_n(id("cat"), 25));
  auto w1 = ls::text::chunk_window(chunks[0], 0);
  EXPECT_EQ(w1[76], kEos);  // a full chunk still ends with the end id
  EXPECT_EQ(ls::text::chunk_prompt(attention_tokenizer(), repeat("cat", 75)).size(), 1u);
  EXPECT_EQ(ls::text::chunk_prompt(attention_tokenizer(), repeat("cat", 76)).size(), 2u);
  EXPECT_EQ(ls::text::chunk_prompt(attention_tokenizer(), repeat("cat", 226)).size(), 4u);  // no 225 limit
}

TEST(PromptChunks, BreakStartsANewChunk) {
  auto c = ls::text::chunk_prompt(attention_tokenizer(), "cat BREAK (dog:1.2)");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(body(c[0]), Ids{id("cat")});
  EXPECT_EQ(body(c[1]), Ids{id("dog")});
  EXPECT_EQ(weights(c[1]), std::vector<double>{1.2});
  auto leading = ls::text::chunk_prompt(attention_tokenizer(), "BREAK cat");  // the empty first chunk is kept
  ASSERT_EQ(leading.size(), 2u);
  EXPECT_EQ(body(leading[0]), Ids{});
  EXPECT_EQ(ls::text::chunk_prompt(attention_tokenizer(), "cat BREAK").size(), 1u);
  EXPECT_EQ(ls::text::chunk_prompt(attention_tokenizer(), "cat BREAK BREAK dog").size(), 3u);
  // A chunk filled exactly by 75 tokens, then BREAK: BREAK closes that chunk, no empty one follows.
  EXPECT_EQ(ls::text::chunk_prompt(attention_tokenizer(), repeat("cat", 75) + "BREAK dog").size(), 2u);
  // Bracketed BREAK is the word "break" with weight -1.1.
  auto bracketed = ls::text::chunk_prompt(attention_tokenizer(), "(cat BREAK dog)");
  ASSERT_EQ(bracketed.size(), 1u);
  EXPECT_EQ(body(bracketed[0]), (Ids{id("cat"), id("break"), id("dog")}));
  EXPECT_EQ(weights(bracketed[0]), (std::vector<double>{1.1, -1.1, 1.1}));
}

TEST(PromptChunks, CommaBacktracking) {
  const int64_t c = id("cat"), d = id("dog"), comma = id(",");
  // 70 cats, comma, 10 dogs: the 5th dog finds the chunk full with the comma 5 back, so the 4
  // dogs after the comma move to the next chunk with their weights.
  auto prompt = repeat("cat", 70) + ", (dog:1.3) (dog:1.3) (dog:1.3) (dog:1.3) " + repeat("dog", 6);
  auto moved = ls::text::chunk_prompt(attention_tokenizer(), prompt);
  ASSERT_EQ(moved.size(), 2u);
  EXPECT_EQ(body(moved[0]), cat({ids_n(c, 70), {comma}}));
  EXPECT_EQ(body(moved[1]), ids_n(d, 10));
  EXPECT_EQ(weights(moved[1]), (std::vector<double>{1.3, 1.3, 1.3, 1.3, 1, 1, 1, 1, 1, 1}));
  // Backtracking off: plain cut at 75.
  auto plain = ls::text::chunk_prompt(attention_tokenizer(), prompt, 0);
  EXPECT_EQ(body(plain[0]), cat({ids_n(c, 70), {comma}, ids_n(d, 4)}));
  EXPECT_EQ(body(plain[1]), ids_n(d, 6));
  // The comma exactly 20 back (index 55) still moves; 21 back (index 54) does not.
  auto at20 = ls::text::chunk_prompt(attention_tokenizer(), repeat("cat", 55) + ", " + repeat("dog", 25));
  EXPECT_EQ(body(at20[0]), cat({ids_n(c, 55), {comma}}));
  EXPECT_EQ(body(at20[1]), ids_n(d, 25));
  auto at21 = ls::text::chunk_prompt(attention_tokenizer(), repeat("cat", 54) + ", " + repeat("dog", 25));
  EXPECT_EQ(body(at21[0]), cat({ids_n(c, 54), {comma}, ids_n(d, 20)}));
  EXPECT_EQ(body(at21[1]), ids_n(d, 5));
  // A comma arriving when the chunk is full opens the next chunk, which then has no known comma.
  auto full = ls::text::chunk_prompt(attention_tokenizer(), repeat("cat", 75) + ", " + repeat("dog", 80));
  ASSERT_EQ(full.size(), 3u);
  EXPECT_EQ(body(full[1]), cat({{comma}, ids_n(d, 74)}));
  EXPECT_EQ(body(full[2]), ids_n(d, 6));
  EXPECT_THROW(ls::text::chunk_prompt(attention_tokenizer(), "a", -1), ls::Error);
}

}  // namespace
