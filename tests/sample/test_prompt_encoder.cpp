// A1111-style SDXL prompt encoding on tiny encoders: unweighted prompts equal SdxlConditioner::encode
// bit for bit, emphasis "Original" against z*w*mean(z)/mean(z*w) computed here per chunk and per
// encoder, chunks side by side (77 each) with pooled from chunk 0, BREAK and comma backtracking
// through the encoders, zero embeddings for an empty negative and pad_cond_uncond padding.
#include <iostream>

#include "core/error.h"
#include "models/sdxl_conditioner.h"
#include "sample/prompt_encoder.h"
#include "support/support.h"
#include "text/prompt_attention.h"

namespace {

using ls::models::ClipTextConfig;
using ls::models::ClipTextModel;
using ls::models::SdxlConditioner;
using ls::models::SdxlTextEmbedding;
using ls::text::ClipTokenizer;
using torch::indexing::Slice;
constexpr int64_t E = 49407;

const ClipTokenizer& clip() {
  static const ClipTokenizer tok = ClipTokenizer::from_file(ls::test::kClipVocab);
  return tok;
}

SdxlConditioner tiny_conditioner(uint64_t seed, torch::Dtype dtype = torch::kFloat) {
  torch::manual_seed(seed);
  ClipTextModel te1(ClipTextConfig::tiny_te1()), te2(ClipTextConfig::tiny_te2());
  te1->to(dtype);
  te2->to(dtype);
  return SdxlConditioner(te1, te2);
}

std::string repeat(const std::string& word, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += word + " ";
  return s;
}

torch::Tensor window(const ls::text::PromptChunk& c, int64_t pad) {
  auto w = ls::text::chunk_window(c, pad);
  return torch::tensor(std::vector<int64_t>(w.begin(), w.end()), torch::kLong).view({1, 77});
}

/// The conditioner's plain encoding of one chunk (no emphasis).
SdxlTextEmbedding plain(SdxlConditioner& cond, const ls::text::PromptChunk& c) {
  torch::NoGradGuard no_grad;
  return cond.encode(window(c, E), window(c, 0));
}

torch::Tensor chunk_of(const torch::Tensor& x, int64_t i) { return x.slice(1, 77 * i, 77 * (i + 1)); }

// EmphasisOriginal by hand on one chunk: z [1, 77, C], weights as A1111's float32 tensor.
torch::Tensor hand_emphasis(const torch::Tensor& z, const std::array<double, 77>& w) {
  auto wt = torch::tensor(std::vector<double>(w.begin(), w.end()), torch::kDouble).to(torch::kFloat);
  auto zw = z * wt.to(z.scalar_type()).view({1, 77, 1});
  return zw * (z.mean() / zw.mean());
}

TEST(PromptEncoder, UnweightedPromptIsTheConditionersEncoding) {
  auto cond = tiny_conditioner(41);
  const std::string prompt = "a photo of a cat, sitting on a red chair";
  auto chunks = ls::text::chunk_prompt(clip(), prompt);
  ASSERT_EQ(chunks.size(), 1u);
  // The windows are the tokenizer's ids: TE1 padded with 49407, TE2 with 0 after the end id.
  auto ids = clip().tokenize(prompt);
  auto ids_l = window(chunks[0], E), ids_g = window(chunks[0], 0);
  const auto n = static_cast<int64_t>(ids.size());
  EXPECT_TRUE(torch::equal(ids_l.slice(1, 0, n), torch::tensor(ids).view({1, n})));
  EXPECT_TRUE(torch::equal(ids_g.slice(1, 0, n), ids_l.slice(1, 0, n)));
  EXPECT_TRUE((ids_l.slice(1, n) == E).all().item<bool>());
  EXPECT_TRUE((ids_g.slice(1, n) == 0).all().item<bool>());

  auto e = ls::sample::encode_prompt(cond, clip(), prompt);
  auto ref = plain(cond, chunks[0]);
  EXPECT_TRUE(ls::test::bit_equal(e.context, ref.context));
  EXPECT_TRUE(ls::test::bit_equal(e.hidden_l, ref.hidden_l));
  EXPECT_TRUE(ls::test::bit_equal(e.hidden_g, ref.hidden_g));
  EXPECT_TRUE(ls::test::bit_equal(e.pooled_g, ref.pooled_g));
  EXPECT_FALSE(e.context.requires_grad());
  // Weights that multiply out to exactly 1 change nothing.
  auto ones = ls::sample::encode_prompt(cond, clip(), "a photo of a ([cat]), (sitting:1.0) on a (red:1) chair");
  EXPECT_TRUE(ls::test::bit_equal(ones.context, ref.context));
}

TEST(PromptEncoder, EmphasisIsOriginalPerChunkAndPerEncoder) {
  auto cond = tiny_conditioner(42, torch::kDouble);  // float64: the check below is tight
  const std::string prompt = "a (red cat:1.5) on [[a chair]], (sun:0.6)";
  auto chunks = ls::text::chunk_prompt(clip(), prompt);
  ASSERT_EQ(chunks.size(), 1u);
  auto e = ls::sample::encode_prompt(cond, clip(), prompt);
  auto ref = plain(cond, chunks[0]);
  auto w = ls::text::chunk_weights(chunks[0]);
  EXPECT_EQ(w[2], 1.5);
  auto expect_l = hand_emphasis(ref.hidden_l, w), expect_g = hand_emphasis(ref.hidden_g, w);
  EXPECT_TRUE(ls::test::all_close(e.hidden_l, expect_l, 1e-13, 1e-13));
  EXPECT_TRUE(ls::test::all_close(e.hidden_g, expect_g, 1e-13, 1e-13));
  EXPECT_TRUE(ls::test::bit_equal(e.context, torch::cat({e.hidden_l, e.hidden_g}, -1)));
  EXPECT_TRUE(ls::test::bit_equal(e.pooled_g, ref.pooled_g));  // pooled is not emphasised
  // Each encoder keeps its own mean; a mean over the joined context would not.
  EXPECT_NEAR(e.hidden_l.mean().item<double>(), ref.hidden_l.mean().item<double>(), 1e-14);
  EXPECT_NEAR(e.hidden_g.mean().item<double>(), ref.hidden_g.mean().item<double>(), 1e-14);
  auto joint = torch::cat({ref.hidden_l, ref.hidden_g}, -1);
  auto wt = torch::tensor(std::vector<double>(w.begin(), w.end()), torch::kDouble).to(torch::kFloat).to(torch::kDouble);
  auto joint_w = joint * wt.view({1, 77, 1});
  const double joint_gap = (e.context - joint_w * (joint.mean() / joint_w.mean())).abs().max().item<double>();
  EXPECT_GT(joint_gap, 1e-6);
  // A1111's multipliers are float32: 1/1.1 rounded to float differs from the double by ~2e-8.
  auto w_double = torch::tensor(std::vector<double>(w.begin(), w.end()), torch::kDouble).view({1, 77, 1});
  auto zd = ref.hidden_l * w_double;
  const double f32_gap = (e.hidden_l - zd * (ref.hidden_l.mean() / zd.mean())).abs().max().item<double>();
  EXPECT_GT(f32_gap, 1e-10);
  std::cout << "[ MEASURED ] emphasis vs hand: TE1 " << (e.hidden_l - expect_l).abs().max().item<double>()
            << ", TE2 " << (e.hidden_g - expect_g).abs().max().item<double>() << "; one mean over the context: "
            << joint_gap << "; double weights: " << f32_gap << "\n";
}

TEST(PromptEncoder, ApplyEmphasisKeepsDtypeAndUsesEachChunksMean) {
  torch::manual_seed(43);
  auto z = torch::randn({2, 77, 8}) + 0.5;
  auto w = torch::ones({2, 77});
  w[1][5] = 2.0;
  auto out = ls::sample::apply_emphasis(z, w);
  EXPECT_EQ(out.scalar_type(), torch::kFloat);
  EXPECT_TRUE(ls::test::bit_equal(out[0], z[0]));  // chunk 0 unweighted: untouched by chunk 1
  auto z1 = z[1] * w[1].unsqueeze(-1);
  EXPECT_TRUE(ls::test::all_close(out[1], z1 * (z[1].mean() / z1.mean()), 1e-6, 1e-6));
  EXPECT_EQ(ls::sample::apply_emphasis(z.to(torch::kDouble), w).scalar_type(), torch::kDouble);
  EXPECT_THROW(ls::sample::apply_emphasis(z, torch::ones({2, 76})), ls::Error);
}

TEST(PromptEncoder, LongPromptChunksSideBySidePooledFromTheFirst) {
  auto cond = tiny_conditioner(44);
  const std::string prompt = repeat("cat", 90) + "(dog:1.3) " + repeat("bird", 9);  // 100 tokens
  auto chunks = ls::text::chunk_prompt(clip(), prompt);
  ASSERT_EQ(chunks.size(), 2u);
  auto e = ls::sample::encode_prompt(cond, clip(), prompt);
  ASSERT_EQ(e.context.sizes(), (std::vector<int64_t>{1, 154, 64}));
  ASSERT_EQ(e.pooled_g.sizes(), (std::vector<int64_t>{1, 32}));
  auto p0 = plain(cond, chunks[0]), p1 = plain(cond, chunks[1]);
  EXPECT_TRUE(ls::test::all_close(chunk_of(e.context, 0), p0.context, 1e-6, 1e-6));  // all weights 1
  auto w1 = ls::text::chunk_weights(chunks[1]);
  EXPECT_EQ(w1[16], 1.3);  // 15 cats, then the dog
  auto expect1 = torch::cat({hand_emphasis(p1.hidden_l, w1), hand_emphasis(p1.hidden_g, w1)}, -1);
  EXPECT_TRUE(ls::test::all_close(chunk_of(e.context, 1), expect1, 1e-5, 1e-6));
  EXPECT_TRUE(ls::test::all_close(e.pooled_g, p0.pooled_g, 1e-6, 1e-6));
  EXPECT_FALSE(torch::allclose(e.pooled_g, p1.pooled_g, 1e-3, 1e-3));
}

TEST(PromptEncoder, BreakAndCommaBacktrackThroughTheEncoders) {
  auto cond = tiny_conditioner(45);
  auto split = ls::sample::encode_prompt(cond, clip(), "a red cat BREAK a blue dog");
  ASSERT_EQ(split.context.size(1), 154);
  auto first = ls::sample::encode_prompt(cond, clip(), "a red cat");
  auto second = ls::sample::encode_prompt(cond, clip(), "a blue dog");
  EXPECT_TRUE(ls::test::all_close(chunk_of(split.context, 0), first.context, 1e-6, 1e-6));
  EXPECT_TRUE(ls::test::all_close(chunk_of(split.context, 1), second.context, 1e-6, 1e-6));
  EXPECT_TRUE(ls::test::all_close(split.pooled_g, first.pooled_g, 1e-6, 1e-6));

  // 70 cats, a comma and 10 dogs: the dogs all go to chunk 1, which encodes as "dog" x 10.
  auto moved = ls::sample::encode_prompt(cond, clip(), repeat("cat", 70) + ", " + repeat("dog", 10));
  ASSERT_EQ(moved.context.size(1), 154);
  auto cats = ls::sample::encode_prompt(cond, clip(), repeat("cat", 70) + ",");
  auto dogs = ls::sample::encode_prompt(cond, clip(), repeat("dog", 10));
  EXPECT_TRUE(ls::test::all_close(chunk_of(moved.context, 0), cats.context, 1e-6, 1e-6));
  EXPECT_TRUE(ls::test::all_close(chunk_of(moved.context, 1), dogs.context, 1e-6, 1e-6));
}

TEST(PromptEncoder, EmptyNegativeIsZerosAndPairsArePadded) {
  auto cond = tiny_conditioner(46);
  auto zero = ls::sample::encode_negative_prompt(cond, clip(), "");
  ASSERT_EQ(zero.context.sizes(), (std::vector<int64_t>{1, 77, 64}));
  ASSERT_EQ(zero.hidden_l.sizes(), (std::vector<int64_t>{1, 77, 32}));
  ASSERT_EQ(zero.hidden_g.sizes(), (std::vector<int64_t>{1, 77, 32}));
  ASSERT_EQ(zero.pooled_g.sizes(), (std::vector<int64_t>{1, 32}));
  for (const auto& t : {zero.context, zero.hidden_l, zero.hidden_g, zero.pooled_g}) {
    EXPECT_EQ(t.scalar_type(), torch::kFloat);
    EXPECT_EQ(t.abs().max().item<double>(), 0.0);
  }
  auto blurry = ls::sample::encode_prompt(cond, clip(), "blurry");
  EXPECT_TRUE(ls::test::bit_equal(ls::sample::encode_negative_prompt(cond, clip(), "blurry").context, blurry.context));

  // Long positive, empty negative: uncond = zeros, then the encoded "" prompt (not zeros).
  const std::string long_prompt = repeat("cat", 100);
  auto pair = ls::sample::encode_prompt_pair(cond, clip(), long_prompt, "");
  auto empty = ls::sample::encode_prompt(cond, clip(), "");
  ASSERT_EQ(pair.cond.context.size(1), 154);
  ASSERT_EQ(pair.uncond.context.size(1), 154);
  ASSERT_EQ(pair.uncond.hidden_l.size(1), 154);
  ASSERT_EQ(pair.uncond.hidden_g.size(1), 154);
  EXPECT_EQ(chunk_of(pair.uncond.context, 0).abs().max().item<double>(), 0.0);
  EXPECT_TRUE(ls::test::bit_equal(chunk_of(pair.uncond.context, 1), empty.context));
  EXPECT_TRUE(ls::test::bit_equal(chunk_of(pair.uncond.hidden_g, 1), empty.hidden_g));
  EXPECT_EQ(pair.uncond.pooled_g.abs().max().item<double>(), 0.0);
  EXPECT_TRUE(ls::test::bit_equal(pair.cond.context, ls::sample::encode_prompt(cond, clip(), long_prompt).context));

  // Short positive, long negative: the positive is padded; equal lengths stay as they are.
  auto swapped = ls::sample::encode_prompt_pair(cond, clip(), "a cat", repeat("ugly", 160));
  ASSERT_EQ(swapped.uncond.context.size(1), 231);
  ASSERT_EQ(swapped.cond.context.size(1), 231);
  auto cat = ls::sample::encode_prompt(cond, clip(), "a cat");
  EXPECT_TRUE(ls::test::bit_equal(chunk_of(swapped.cond.context, 0), cat.context));
  EXPECT_TRUE(ls::test::bit_equal(swapped.cond.context.slice(1, 77), torch::cat({empty.context, empty.context}, 1)));
  auto same = ls::sample::encode_prompt_pair(cond, clip(), "a cat", "blurry");
  EXPECT_TRUE(ls::test::bit_equal(same.cond.context, cat.context));
  EXPECT_TRUE(ls::test::bit_equal(same.uncond.context, blurry.context));

  auto odd = blurry;
  odd.context = odd.context.slice(1, 0, 70);
  EXPECT_THROW(ls::sample::pad_to_same_length(odd, blurry, empty), ls::Error);
}

}  // namespace
