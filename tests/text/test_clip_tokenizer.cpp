// ClipTokenizer against OpenAI CLIP's own ids (shared/fixtures/tokenizer_cases.json, 200 prompts),
// the same vocabulary as a Hugging Face vocab.json + merges.txt pair, a hand-checked tiny BPE,
// CLIP's regex quirks, and load errors.
#include <zlib.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "support/support.h"
#include "text/clip_tokenizer.h"
#include "text/prompt_windows.h"
#include "text/unicode.h"

namespace {

using ls::text::ClipTokenizer;
using Ids = std::vector<int64_t>;

const ClipTokenizer& clip() {
  static const ClipTokenizer tok = ClipTokenizer::from_file(ls::test::kClipVocab);
  return tok;
}

nlohmann::json load_cases() {
  std::ifstream in(std::string(ls::test::kFixturesDir) + "/tokenizer_cases.json");
  return nlohmann::json::parse(in).at("cases");
}

Ids window_ids(const ls::text::TokenWindow& w) { return Ids(w.begin(), w.end()); }

// Every fixture case through `tok`: ids, both 77-token rows, eos position and decode.
void expect_fixture_cases(const ClipTokenizer& tok) {
  auto cases = load_cases();
  ASSERT_EQ(cases.size(), 200u);
  for (const auto& c : cases) {
    const auto text = c.at("text").get<std::string>();
    SCOPED_TRACE("case " + std::to_string(c.at("i").get<int>()) + ": " + text.substr(0, 60));
    Ids ids = tok.tokenize(text);
    ASSERT_EQ(ids, c.at("ids").get<Ids>());
    Ids body(ids.begin() + 1, ids.end() - 1);
    EXPECT_EQ(tok.encode(text), body);
    EXPECT_EQ(window_ids(ls::text::token_windows(body, 1, ClipTokenizer::kEnd).at(0)), c.at("te1_77").get<Ids>());
    EXPECT_EQ(window_ids(ls::text::token_windows(body, 1, 0).at(0)), c.at("te2_77").get<Ids>());
    auto te2 = c.at("te2_77").get<Ids>();
    EXPECT_EQ(std::find(te2.begin(), te2.end(), ClipTokenizer::kEnd) - te2.begin(), c.at("eos_pos").get<int64_t>());
    EXPECT_EQ(tok.decode(body), c.at("decoded").get<std::string>());
  }
}

TEST(GoldenClipTokenizer, AllFixtureCasesMatchOpenAiClip) {
  EXPECT_EQ(clip().vocab_size(), 49408);
  EXPECT_EQ(clip().start_id(), ClipTokenizer::kStart);
  EXPECT_EQ(clip().end_id(), ClipTokenizer::kEnd);
  expect_fixture_cases(clip());
  expect_fixture_cases(clip());  // second pass answers from the word cache
}

TEST(GoldenClipTokenizer, LoadsTheGzipVocabularyQuickly) {
  auto t0 = std::chrono::steady_clock::now();
  auto tok = ClipTokenizer::from_file(ls::test::kClipVocab);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("load %s: %.3f s\n", ls::test::kClipVocab, seconds);
  EXPECT_LT(seconds, 1.5);  // ~0.1 s measured; generous for a loaded shared machine
  EXPECT_EQ(tok.token_text(320), "a</w>");
  EXPECT_EQ(tok.token_text(49406), "<|startoftext|>");
}

TEST(GoldenClipTokenizer, CachedEncodingIsFastAndThreadSafe) {
  auto tok = ClipTokenizer::from_file(ls::test::kClipVocab);  // fresh word cache
  std::vector<std::string> texts;
  std::vector<Ids> expected;
  for (const auto& c : load_cases()) {
    texts.push_back(c.at("text").get<std::string>());
    expected.push_back(c.at("ids").get<Ids>());
  }
  // Four threads fill and read one cache at once; every result must still be exact.
  std::vector<int> wrong(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = 0; i < texts.size(); ++i)
          if (tok.tokenize(texts[(i + static_cast<size_t>(t) * 50) % texts.size()]) !=
              expected[(i + static_cast<size_t>(t) * 50) % texts.size()])
            ++wrong[static_cast<size_t>(t)];
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
  auto t0 = std::chrono::steady_clock::now();
  int64_t n_ids = 0;
  for (int rep = 0; rep < 20; ++rep)
    for (const auto& text : texts) n_ids += static_cast<int64_t>(tok.tokenize(text).size());
  double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
              (20.0 * static_cast<double>(texts.size()));
  std::printf("tokenize, warm cache: %.1f us per prompt (%.1f ids on average)\n", us,
              static_cast<double>(n_ids) / (20.0 * static_cast<double>(texts.size())));
  EXPECT_LT(us, 2000.0);  // ~3 us measured; only guards against pathological slowness
}

// Writes the gz vocabulary as the vocab.json + merges.txt a diffusers model ships.
void write_hf_pair(const std::filesystem::path& dir) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int64_t id = 0; id < clip().vocab_size(); ++id) vocab[clip().token_text(id)] = id;
  std::ofstream(dir / "vocab.json") << vocab.dump();
  gzFile gz = gzopen(ls::test::kClipVocab, "rb");
  ASSERT_NE(gz, nullptr);
  std::ofstream merges(dir / "merges.txt");
  std::vector<char> line(4096);
  for (int i = 0; i < 1 + 48894 && gzgets(gz, line.data(), static_cast<int>(line.size())); ++i) {
    merges << (i == 0 ? std::string("#version: 0.2\n") : std::string(line.data()));
  }
  gzclose(gz);
}

TEST(GoldenClipTokenizer, HuggingFaceVocabJsonAndMergesTxtGiveTheSameIds) {
  ls::test::TempDir dir;
  write_hf_pair(dir.path());
  auto from_folder = ClipTokenizer::from_file(dir.path());
  auto from_json = ClipTokenizer::from_file(dir / "vocab.json");
  auto from_merges_txt = ClipTokenizer::from_file(dir / "merges.txt");  // OpenAI's format, uncompressed
  for (const auto* tok : {&from_folder, &from_json, &from_merges_txt}) {
    EXPECT_EQ(tok->vocab_size(), 49408);
    expect_fixture_cases(*tok);
  }
}

// A 519-id vocabulary: the 512 byte symbols in CLIP's order, five merges, two specials.
const char* kTinyMerges[] = {"l l", "h e", "he ll", "hell o</w>", "l o</w>"};

void write_tiny_vocab(const std::filesystem::path& dir) {
  nlohmann::json vocab = nlohmann::json::object();
  std::ofstream merges_txt(dir / "merges.txt");
  merges_txt << "#version: 0.2\n";
  for (int64_t id = 0; id < 512; ++id) vocab[clip().token_text(id)] = id;  // bytes, then bytes + </w>
  int64_t id = 512;
  for (const char* m : kTinyMerges) {
    std::string s(m);
    merges_txt << s << "\n";
    vocab[s.substr(0, s.find(' ')) + s.substr(s.find(' ') + 1)] = id++;
  }
  vocab["<|startoftext|>"] = id++;
  vocab["<|endoftext|>"] = id++;
  std::ofstream(dir / "vocab.json") << vocab.dump(1);
}

std::vector<std::string> token_texts(const ClipTokenizer& tok, const std::string& text) {
  std::vector<std::string> out;
  for (int64_t id : tok.encode(text)) out.push_back(tok.token_text(id));
  return out;
}

TEST(ClipTokenizerBpe, TinyVocabularyMergesByRankLeftToRight) {
  ls::test::TempDir dir;
  write_tiny_vocab(dir.path());
  for (const auto& path : {dir.path(), dir / "merges.txt"}) {  // HF pair, and the same merges as CLIP's format
    auto tok = ClipTokenizer::from_file(path);
    EXPECT_EQ(tok.vocab_size(), 519);
    EXPECT_EQ(tok.start_id(), 517);
    EXPECT_EQ(tok.end_id(), 518);
    // hello: ll (rank 0), he (1), hell (2), hello</w> (3)
    EXPECT_EQ(token_texts(tok, "Hello"), (std::vector<std::string>{"hello</w>"}));
    // hell: "l l</w>" is not "l l", so only he merges
    EXPECT_EQ(token_texts(tok, "hell"), (std::vector<std::string>{"he", "l", "l</w>"}));
    // llo: ll (rank 0) wins over lo</w> (rank 4), then nothing joins ll + o</w>
    EXPECT_EQ(token_texts(tok, "llo"), (std::vector<std::string>{"ll", "o</w>"}));
    // lllo: ll merges left to right (ll, l), then l + o</w>
    EXPECT_EQ(token_texts(tok, "lllo"), (std::vector<std::string>{"ll", "lo</w>"}));
    EXPECT_EQ(token_texts(tok, "x"), (std::vector<std::string>{"x</w>"}));
    EXPECT_EQ(tok.tokenize("hello hello"), (Ids{517, 515, 515, 518}));
    EXPECT_EQ(tok.decode(tok.encode("hello lllo!")), "hello lllo ! ");
  }
}

std::vector<std::string> pretokens(const std::string& cleaned) {
  std::vector<std::string> out;
  for (const auto& t : ClipTokenizer::pretokenize(ls::text::utf8_to_u32(cleaned))) out.push_back(ls::text::u32_to_utf8(t));
  return out;
}

TEST(ClipTokenizerRegex, AlternativesInOrderWithIgnoreCase) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pretokens("it's we're i'd"), (V{"it", "'s", "we", "'re", "i", "'d"}));
  EXPECT_EQ(pretokens("!'s"), (V{"!'", "s"}));  // the contraction only starts a match
  EXPECT_EQ(pretokens("a1b 2024"), (V{"a", "1", "b", "2", "0", "2", "4"}));
  EXPECT_EQ(pretokens("!!?  ..."), (V{"!!?", "..."}));
  EXPECT_EQ(pretokens("x<|endoftext|>y"), (V{"x", "<|endoftext|>", "y"}));
  EXPECT_EQ(pretokens("x'\u017F"), (V{"x", "'\u017F"}));  // long s folds to s under IGNORECASE
  EXPECT_EQ(pretokens("<|\u017Ftartoftext|>"), (V{"<|\u017Ftartoftext|>"}));
  EXPECT_EQ(pretokens("a\u0345b !\u0345!"), (V{"a", "b", "!", "!"}));  // U+0345 matches no branch
  EXPECT_EQ(pretokens("caf\u00E9\u200Bbar"), (V{"caf\u00E9", "\u200B", "bar"}));
  EXPECT_EQ(pretokens("\u2460\u2461"), (V{"\u2460", "\u2461"}));  // circled digits are No: one each
}

TEST(GoldenClipTokenizer, SpecialTokensOnlyForTheirExactSpelling) {
  const auto& tok = clip();
  EXPECT_EQ(tok.tokenize("<|startoftext|>"), (Ids{49406, 49406, 49407}));
  EXPECT_EQ(tok.encode("a <|endoftext|> b"), (Ids{320, 49407, 321}));
  auto folded = tok.encode("<|\u017Ftartoftext|>");
  EXPECT_GT(folded.size(), 1u);
  EXPECT_EQ(std::count(folded.begin(), folded.end(), ClipTokenizer::kStart), 0);
}

TEST(ClipTokenizerErrors, OneLineErrorsNameTheFile) {
  ls::test::TempDir dir;
  auto message = [](const std::filesystem::path& p) {
    try {
      ClipTokenizer::from_file(p);
    } catch (const ls::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto missing = dir / "nope.txt.gz";
  EXPECT_NE(message(missing).find(missing.string() + ": no such file"), std::string::npos) << message(missing);
  std::ofstream(dir / "bad.txt") << "#version: 0.2\na b\nthree parts here\n";
  EXPECT_NE(message(dir / "bad.txt").find("line 3 should be two symbols"), std::string::npos) << message(dir / "bad.txt");
  std::ofstream(dir / "vocab.json") << "{\"a\": 0}";
  EXPECT_NE(message(dir / "vocab.json").find("no merges.txt beside it"), std::string::npos);
  std::ofstream(dir / "merges.txt") << "#version: 0.2\na b\n";
  EXPECT_NE(message(dir.path()).find("lacks the byte symbol"), std::string::npos) << message(dir.path());
  std::ofstream(dir / "vocab.json") << "[1, 2]";
  EXPECT_NE(message(dir.path()).find("should be a JSON object"), std::string::npos) << message(dir.path());
  for (const auto& m : {message(missing), message(dir / "bad.txt"), message(dir.path())})
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_THROW(clip().decode({49408}), ls::Error);
  EXPECT_THROW(clip().decode({-1}), ls::Error);
}

}  // namespace
