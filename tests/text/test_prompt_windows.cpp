// kohya's 77-token windows, with expected windows worked out by hand from
// kohya-ss/sd-scripts library/strategy_base.py _get_input_ids (row of n*75+2 ids from the
// tokenizer, windows cut at 1, 76, 151, fix-ups for pad != eos).
#include "core/error.h"
#include "support/support.h"
#include "text/prompt_windows.h"

namespace {

using ls::text::token_windows;
using Ids = std::vector<int64_t>;
constexpr int64_t S = 49406, E = 49407;

Ids body_of(int n) {  // distinct ids that are neither pad nor end
  Ids b;
  for (int i = 0; i < n; ++i) b.push_back(1000 + i);
  return b;
}

// start, then `parts` concatenated, then filled with `fill` up to 77.
Ids window(std::initializer_list<Ids> parts, int64_t fill, int64_t last) {
  Ids w{S};
  for (const auto& p : parts) w.insert(w.end(), p.begin(), p.end());
  w.resize(76, fill);
  w.push_back(last);
  return w;
}

Ids slice(const Ids& b, int from, int to) { return Ids(b.begin() + from, b.begin() + to); }

std::vector<Ids> windows(const Ids& body, int n, int64_t pad) {
  std::vector<Ids> out;
  for (const auto& w : token_windows(body, n, pad)) out.emplace_back(w.begin(), w.end());
  return out;
}

TEST(PromptWindows, OneWindowIsTruncateAndPad) {
  auto b = body_of(3);
  EXPECT_EQ(windows(b, 1, E), (std::vector<Ids>{window({b, {E}}, E, E)}));
  EXPECT_EQ(windows(b, 1, 0), (std::vector<Ids>{window({b, {E}}, 0, 0)}));
  auto long_body = body_of(80);
  EXPECT_EQ(windows(long_body, 1, 0), (std::vector<Ids>{window({slice(long_body, 0, 75)}, 0, E)}));
  EXPECT_EQ(windows({}, 1, 0), (std::vector<Ids>{window({{E}}, 0, 0)}));
  // A body that starts with id 0 ("!" before another symbol) keeps it: no fix-ups for one window.
  EXPECT_EQ(windows({0, 5}, 1, 0), (std::vector<Ids>{window({{0, 5, E}}, 0, 0)}));
}

TEST(PromptWindows, ShortPromptInTwoWindows) {
  auto b = body_of(3);
  // TE1 (pad = eos): no fix-ups; the second window is start + 76 eos.
  EXPECT_EQ(windows(b, 2, E), (std::vector<Ids>{window({b, {E}}, E, E), window({}, E, E)}));
  // TE2 (pad 0): row = S b0 b1 b2 E 0...; window 2 = S 0*75 0 -> its first pad becomes eos.
  EXPECT_EQ(windows(b, 2, 0), (std::vector<Ids>{window({b, {E}}, 0, 0), window({{E}}, 0, 0)}));
}

TEST(PromptWindows, BodyFillingWindowsExactly) {
  auto b75 = body_of(75);
  // Window 1's 75th id is a body token, so its last id (the row's pad 0) becomes eos; window 2
  // starts with the row's eos.
  EXPECT_EQ(windows(b75, 2, 0), (std::vector<Ids>{window({b75}, 0, E), window({{E}}, 0, 0)}));
  EXPECT_EQ(windows(b75, 2, E), (std::vector<Ids>{window({b75}, E, E), window({}, E, E)}));
  auto b76 = body_of(76);
  EXPECT_EQ(windows(b76, 2, 0), (std::vector<Ids>{window({slice(b76, 0, 75)}, 0, E), window({{1075, E}}, 0, 0)}));
  auto b150 = body_of(150);
  auto both = std::vector<Ids>{window({slice(b150, 0, 75)}, 0, E), window({slice(b150, 75, 150)}, 0, E)};
  EXPECT_EQ(windows(b150, 2, 0), both);
  EXPECT_EQ(windows(b150, 2, E), both);
  EXPECT_EQ(windows(body_of(200), 2, 0), both);  // tokens past 150 are dropped
}

TEST(PromptWindows, ThreeWindows) {
  auto b10 = body_of(10);
  EXPECT_EQ(windows(b10, 3, E), (std::vector<Ids>{window({b10, {E}}, E, E), window({}, E, E), window({}, E, E)}));
  EXPECT_EQ(windows(b10, 3, 0),
            (std::vector<Ids>{window({b10, {E}}, 0, 0), window({{E}}, 0, 0), window({{E}}, 0, 0)}));
  auto b151 = body_of(151);
  EXPECT_EQ(windows(b151, 3, 0), (std::vector<Ids>{window({slice(b151, 0, 75)}, 0, E),
                                                   window({slice(b151, 75, 150)}, 0, E),
                                                   window({{1150, E}}, 0, 0)}));
  auto b225 = body_of(240);
  EXPECT_EQ(windows(b225, 3, 0), (std::vector<Ids>{window({slice(b225, 0, 75)}, 0, E),
                                                   window({slice(b225, 75, 150)}, 0, E),
                                                   window({slice(b225, 150, 225)}, 0, E)}));
}

TEST(PromptWindows, KohyaTreatsBodyZerosAsPadding) {
  // Id 0 is also a real token ("!" inside a longer punctuation run). kohya's checks compare ids,
  // so with pad 0 a window starting with it starts with eos instead, and one whose 75th id is 0
  // keeps the row's pad as its last id.
  auto b = body_of(160);
  b[75] = 0;   // first body id of window 2
  b[149] = 0;  // 75th body id of window 2
  Ids w2_mid = slice(b, 76, 149);
  EXPECT_EQ(windows(b, 3, 0)[1], window({{E}, w2_mid, {0}}, 0, 0));
  EXPECT_EQ(windows(b, 3, E)[1], window({{0}, w2_mid, {0}}, 0, E));  // pad == eos: untouched
}

TEST(PromptWindows, ArgumentChecks) {
  EXPECT_THROW(token_windows({}, 0, 0), ls::Error);
  EXPECT_THROW(token_windows({}, 4, 0), ls::Error);
  EXPECT_EQ(ls::text::windows_for_max_token_length(0), 1);
  EXPECT_EQ(ls::text::windows_for_max_token_length(150), 2);
  EXPECT_EQ(ls::text::windows_for_max_token_length(225), 3);
  EXPECT_THROW(ls::text::windows_for_max_token_length(100), ls::Error);
}

}  // namespace
