// BartTokenizer against transformers 5.23 / tokenizers 0.23.3: every case of
// tests/fixtures/florence2/tokenizer/cases.json (a synthetic BART vocabulary with Microsoft's 1,024
// Florence-2 tokens + <image>), plus cases checked by hand with the same reference on that vocabulary
// (the GPT-2 pre-token regex on Unicode edge cases; added-token flags, add_prefix_space and
// split_special_tokens from tokenizer_config.json; the tokenizer.json and legacy added_tokens.json
// paths), load errors, and a speed and thread-safety sanity check.
#include <chrono>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "support/support.h"
#include "text/bart_tokenizer.h"

namespace {

namespace fs = std::filesystem;
using ls::text::BartTokenizer;
using BartIds = std::vector<int64_t>;
using ::testing::HasSubstr;

fs::path bart_fixture_dir() { return fs::path(ls::test::kSourceDir) / "tests/fixtures/florence2/tokenizer"; }

nlohmann::json bart_read(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

const nlohmann::json& bart_cases() {
  static const nlohmann::json cases = bart_read(bart_fixture_dir() / "cases.json");
  return cases;
}

std::vector<std::string> bart_with_image() {
  auto tokens = ls::text::florence2_added_tokens();
  tokens.push_back("<image>");  // the native port's conversion script adds it after the 1,024
  return tokens;
}

const BartTokenizer& bart_fixture() {
  static const BartTokenizer tok = BartTokenizer::load(bart_fixture_dir(), bart_with_image());
  return tok;
}

void bart_write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// The fixture's vocab.json and merges.txt as a tokenizer.json model section.
nlohmann::json bart_tokenizer_json(bool merges_as_pairs) {
  nlohmann::json model = {{"type", "BPE"}, {"vocab", bart_read(bart_fixture_dir() / "vocab.json")}};
  model["merges"] = nlohmann::json::array();
  std::ifstream in(bart_fixture_dir() / "merges.txt");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("#version", 0) == 0 || line.empty()) continue;
    auto sp = line.find(' ');
    if (merges_as_pairs)
      model["merges"].push_back({line.substr(0, sp), line.substr(sp + 1)});
    else
      model["merges"].push_back(line);
  }
  nlohmann::json added = nlohmann::json::array();
  for (const auto& s : bart_cases().at("specials")) added.push_back(s);
  return {{"model", model}, {"added_tokens", added}};
}

struct BartCase {
  std::string text;
  BartIds ids;
  std::string decoded_skip;
};

void bart_expect_cases(const BartTokenizer& tok, const std::vector<BartCase>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE("text: '" + c.text + "'");
    BartIds ids = tok.encode(c.text);
    EXPECT_EQ(ids, c.ids);
    EXPECT_EQ(tok.decode(ids, true), c.decoded_skip);
  }
}

void bart_expect_fixture_cases(const BartTokenizer& tok) {
  const auto& encode = bart_cases().at("encode");
  ASSERT_EQ(encode.size(), 51u);
  for (const auto& c : encode) {
    const auto text = c.at("text").get<std::string>();
    SCOPED_TRACE("encode: '" + text + "'");
    EXPECT_EQ(tok.encode(text), c.at("ids").get<BartIds>());
    EXPECT_EQ(tok.encode(text, false), c.at("ids_plain").get<BartIds>());
    const auto ids = c.at("ids").get<BartIds>();
    EXPECT_EQ(tok.decode(ids, false), c.at("decoded").get<std::string>());
    EXPECT_EQ(tok.decode(ids, true), c.at("decoded_skip").get<std::string>());
  }
  const auto& decode = bart_cases().at("decode");
  ASSERT_EQ(decode.size(), 9u);
  for (const auto& c : decode) {
    const auto ids = c.at("ids").get<BartIds>();
    SCOPED_TRACE("decode: " + c.at("ids").dump());
    EXPECT_EQ(tok.decode(ids, false), c.at("decoded").get<std::string>());
    EXPECT_EQ(tok.decode(ids, true), c.at("decoded_skip").get<std::string>());
  }
}

TEST(BartTokenizerReference, AllFixtureCasesMatchTransformers) {
  const auto& tok = bart_fixture();
  EXPECT_EQ(tok.vocab_size(), bart_cases().at("vocab_size_with_image").get<int64_t>());  // 1826
  EXPECT_EQ(tok.token_id("<image>"), bart_cases().at("image_token_id").get<int64_t>());
  EXPECT_FALSE(bart_cases().at("clean_up_tokenization_spaces").get<bool>());
  bart_expect_fixture_cases(tok);
  bart_expect_fixture_cases(tok);  // the second pass answers from the BPE cache
}

TEST(BartTokenizerReference, AddedTokensTakeTheIdsAfterTheVocabulary) {
  const auto& tok = bart_fixture();
  const auto base = bart_cases().at("base_vocab_size").get<int64_t>();  // 801
  const auto appended = bart_cases().at("appended_tokens").get<std::vector<std::string>>();
  ASSERT_EQ(appended, bart_with_image());
  for (size_t k = 0; k < appended.size(); ++k) {
    EXPECT_EQ(tok.token_id(appended[k]), base + static_cast<int64_t>(k)) << appended[k];
    EXPECT_TRUE(tok.is_special(base + static_cast<int64_t>(k)));
    EXPECT_EQ(tok.token_text(base + static_cast<int64_t>(k)), appended[k]);
  }
  for (const auto& s : bart_cases().at("specials")) {
    EXPECT_EQ(tok.token_id(s.at("content").get<std::string>()), s.at("id").get<int64_t>());
    EXPECT_TRUE(tok.is_special(s.at("id").get<int64_t>()));
  }
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.pad_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.unk_id(), 3);
  EXPECT_EQ(tok.token_id("<mask>"), 800);
  EXPECT_EQ(tok.token_id("Ġdog"), 379);
  EXPECT_FALSE(tok.is_special(379));
  EXPECT_EQ(tok.token_id("<loc_1000>"), -1);

  // Microsoft's processor alone: 1,024 tokens, V .. V+1023 (51,289 ids on the real 50,265).
  auto microsoft = BartTokenizer::load(bart_fixture_dir(), ls::text::florence2_added_tokens());
  EXPECT_EQ(microsoft.vocab_size(), bart_cases().at("vocab_size_with_added").get<int64_t>());  // 1825
  EXPECT_EQ(microsoft.token_id("<od>"), base);
  EXPECT_EQ(microsoft.token_id("<loc_0>"), base + 4);
  EXPECT_EQ(microsoft.token_id("<loc_999>"), base + 1003);
  EXPECT_EQ(microsoft.token_id("<region_to_desciption>"), base + 1017);
  EXPECT_EQ(microsoft.token_id("<and>"), base + 1023);
  EXPECT_EQ(microsoft.token_id("<image>"), -1);
  // Adding a known token again changes nothing; a vocab.json token keeps its id.
  auto again = BartTokenizer::load(bart_fixture_dir(), {"<od>", "<mask>", "Ġdog", "<od>", "<x>"});
  EXPECT_EQ(again.token_id("<od>"), base);
  EXPECT_EQ(again.token_id("<mask>"), 800);
  EXPECT_EQ(again.token_id("Ġdog"), 379);
  EXPECT_EQ(again.token_id("<x>"), base + 1);
  EXPECT_TRUE(again.is_special(379));
}

TEST(BartTokenizerLists, Florence2AddedTokensInTheProcessorsOrder) {
  auto t = ls::text::florence2_added_tokens();
  ASSERT_EQ(t.size(), 1024u);
  EXPECT_EQ(t[0], "<od>");
  EXPECT_EQ(t[3], "</ocr>");
  EXPECT_EQ(t[4], "<loc_0>");
  EXPECT_EQ(t[1003], "<loc_999>");
  EXPECT_EQ(t[1004], "<cap>");
  EXPECT_EQ(t[1014], "<sep>");
  EXPECT_EQ(t[1018], "</region_to_desciption>");
  EXPECT_EQ(t[1023], "<and>");
}

// ByteLevel(add_prefix_space=False).pre_tokenize_str on each text (tokenizers 0.23.3): Oniguruma's
// \s is White_Space (U+0085 and U+3000 in, U+001C out), \p{N} takes Nl and No, marks are "other".
TEST(BartTokenizerRegex, Gpt2PreTokensOnUnicode) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"x'sup 'S l'll've", {"x", "'s", "up", " '", "S", " l", "'ll", "'ve"}},
      {"a  \n\n b", {"a", "  \n\n", " b"}},
      {" \n x", {" \n", " x"}},
      {"tab\t\tx  ", {"tab", "\t", "\t", "x", "  "}},
      {"\u0085a\x1c" "b\u3000c\u2028d", {"\u0085", "a", "\x1c", "b", "\u3000", "c", "\u2028", "d"}},
      {"a\u00a0 b\u2003\u2003c", {"a", "\u00a0", " b", "\u2003", "\u2003", "c"}},
      {"\u0967\u0968\u0969 \u216b\u00bd 3rd", {"\u0967\u0968\u0969", " \u216b\u00bd", " 3", "rd"}},
      {"\u0301 e\u0301 a\u0345b", {"\u0301", " e", "\u0301", " a", "\u0345", "b"}},
      {"\U0001d518\U0001d52b ABC", {"\U0001d518\U0001d52b", " ABC"}},
      {"$$ -- !!x", {"$$", " --", " !!", "x"}},
      {"\u65e5\u672c\u8a9e \u30c6\u30ad\u30b9\u30c8", {"\u65e5\u672c\u8a9e", " \u30c6\u30ad\u30b9\u30c8"}},
      {"emoji\U0001f600\U0001f600 x", {"emoji", "\U0001f600\U0001f600", " x"}},
  };
  for (const auto& [text, pieces] : cases) EXPECT_EQ(BartTokenizer::pretokenize(text), pieces) << text;
  EXPECT_TRUE(BartTokenizer::pretokenize("").empty());
}

// A copy of the fixture folder with tokenizer_config.json changed by `edit`.
fs::path bart_config_folder(const ls::test::TempDir& dir, const std::function<void(nlohmann::json&)>& edit) {
  for (const char* f : {"vocab.json", "merges.txt"}) fs::copy_file(bart_fixture_dir() / f, dir / f);
  auto config = bart_read(bart_fixture_dir() / "tokenizer_config.json");
  edit(config);
  bart_write(dir / "tokenizer_config.json", config.dump());
  return dir.path();
}

nlohmann::json bart_flags(const char* content, bool lstrip, bool rstrip, bool single_word, bool normalized,
                          bool special) {
  return {{"content", content}, {"lstrip", lstrip},          {"rstrip", rstrip},
          {"single_word", single_word}, {"normalized", normalized}, {"special", special}};
}

// The transformers results for tokenizer_config.json variants of the fixture folder, each loaded with
// BartTokenizer.from_pretrained + add_special_tokens(["<od>", "<loc_0>", "</od>"]).
TEST(BartTokenizerReference, AddedTokenFlagsFromTokenizerConfig) {
  ls::test::TempDir dir;
  auto folder = bart_config_folder(dir, [](nlohmann::json& c) {
    auto& d = c["added_tokens_decoder"];
    d["900"] = bart_flags("<rs>", false, true, false, false, true);
    d["901"] = bart_flags("<sw>", false, false, true, false, true);
    d["902"] = bart_flags("dog", false, false, false, true, false);     // normalized: second pass
    d["903"] = bart_flags("<both>", true, true, false, false, false);
    d["904"] = bart_flags("og", false, false, false, false, false);     // in vocab.json: keeps 318
  });
  auto tok = BartTokenizer::load(folder, {"<od>", "<loc_0>", "</od>"});
  EXPECT_EQ(tok.vocab_size(), 808);
  EXPECT_EQ(tok.token_id("<rs>"), 801);  // ids follow added_tokens_decoder's order, not its numbers
  EXPECT_EQ(tok.token_id("<sw>"), 802);
  EXPECT_EQ(tok.token_id("dog"), 803);
  EXPECT_EQ(tok.token_id("<both>"), 804);
  EXPECT_EQ(tok.token_id("og"), 318);
  EXPECT_EQ(tok.token_id("<od>"), 805);
  EXPECT_EQ(tok.token_id("</od>"), 807);
  EXPECT_FALSE(tok.is_special(804));
  bart_expect_cases(tok, {
      {"a <rs>  b <rs>", {0, 68, 224, 801, 69, 224, 801, 2}, "a b "},
      {"x<sw>y <sw> z <sw>", {0, 91, 31, 86, 90, 33, 92, 224, 802, 224, 93, 224, 802, 2}, "x<sw>y  z "},
      {"a dog doggy", {0, 68, 279, 318, 279, 318, 74, 92, 2}, "a dog doggy"},
      {"p   <both>   q<both>", {0, 83, 804, 84, 804, 2}, "p<both>q<both>"},
      {"<mask>  <mask> <rs> <mask>", {0, 800, 800, 224, 801, 800, 2}, " "},
      {"hot dog<mask>dog", {0, 466, 279, 318, 800, 71, 318, 2}, "hot dogdog"},
      {" lead <s> x", {0, 587, 343, 224, 0, 224, 91, 2}, " lead  x"},
      {"<s>", {0, 0, 2}, ""},
      {"", {0, 2}, ""},
      {"\u00e9<sw>", {0, 131, 106, 31, 86, 90, 33, 2}, "\u00e9<sw>"},
  });
}

TEST(BartTokenizerReference, AddPrefixSpaceAndSplitSpecialTokens) {
  ls::test::TempDir prefix_dir, split_dir;
  auto prefix = BartTokenizer::load(
      bart_config_folder(prefix_dir, [](nlohmann::json& c) { c["add_prefix_space"] = true; }), {"<od>"});
  bart_expect_cases(prefix, {
      {"a dog doggy", {0, 263, 379, 379, 74, 92, 2}, " a dog doggy"},
      {"<mask>  <mask> <rs> <mask>", {0, 800, 800, 582, 321, 33, 800, 2}, " <rs>"},
      {"hot dog<mask>dog", {0, 365, 320, 379, 800, 379, 2}, " hot dog dog"},
      {" lead <s> x", {0, 587, 343, 224, 0, 224, 91, 2}, " lead  x"},
      {"", {0, 2}, ""},
      {"\u00e9<sw>", {0, 224, 131, 106, 31, 86, 90, 33, 2}, " \u00e9<sw>"},
  });
  auto split = BartTokenizer::load(
      bart_config_folder(split_dir, [](nlohmann::json& c) { c["split_special_tokens"] = true; }), {"<od>"});
  bart_expect_cases(split, {
      {"<mask>  <mask> <rs> <mask>",
       {0, 31, 273, 86, 78, 33, 224, 582, 273, 86, 78, 33, 582, 321, 33, 582, 273, 86, 78, 33, 2},
       "<mask>  <mask> <rs> <mask>"},
      {"hot dog<mask>dog", {0, 466, 379, 31, 273, 86, 78, 33, 71, 318, 2}, "hot dog<mask>dog"},
      {" lead <s> x", {0, 587, 343, 582, 86, 33, 224, 91, 2}, " lead <s> x"},
      {"<s>", {0, 31, 86, 33, 2}, "<s>"},
  });
}

// With tokenizer.json, transformers takes BartTokenizer's vocabulary and merges from it.
TEST(BartTokenizerReference, TokenizerJsonGivesTheSameIds) {
  ls::test::TempDir dir;
  bart_write(dir / "tokenizer.json", bart_tokenizer_json(false).dump());
  fs::copy_file(bart_fixture_dir() / "tokenizer_config.json", dir / "tokenizer_config.json");
  bart_expect_fixture_cases(BartTokenizer::load(dir.path(), bart_with_image()));
}

// No added_tokens_decoder: the legacy files. added_tokens.json and tokenizer.json's added_tokens
// are ordered by their ids (a later one replaces the flags of an earlier one with the same text),
// <mask> takes lstrip from tokenizer.json, and added_tokens.json's entries are neither special nor
// stripped. Reference: transformers 5.23 on the same files + add_special_tokens(["<od>"]).
TEST(BartTokenizerReference, LegacyAddedTokenFiles) {
  ls::test::TempDir dir;
  auto tj = bart_tokenizer_json(true);
  tj["added_tokens"].push_back(bart_flags("<foo>", false, true, false, false, false));
  tj["added_tokens"].back()["id"] = 1200;
  bart_write(dir / "tokenizer.json", tj.dump());
  bart_write(dir / "added_tokens.json", R"({"<bar>": 1100, "<foo>": 1300})");
  bart_write(dir / "tokenizer_config.json", R"({"model_max_length": 1024})");
  auto tok = BartTokenizer::load(dir.path(), {"<od>"});
  EXPECT_EQ(tok.vocab_size(), 804);
  EXPECT_EQ(tok.token_id("<bar>"), 801);
  EXPECT_EQ(tok.token_id("<foo>"), 802);
  EXPECT_EQ(tok.token_id("<od>"), 803);
  EXPECT_FALSE(tok.is_special(801));
  EXPECT_TRUE(tok.is_special(803));
  bart_expect_cases(tok, {
      {"x  <mask> <foo>  y <bar> z <od>", {0, 91, 800, 224, 802, 224, 366, 224, 801, 224, 93, 224, 803, 2},
       "x <foo>  y <bar> z "},
      {"a dog", {0, 68, 379, 2}, "a dog"},
  });
}

TEST(BartTokenizerDecode, DropsUnknownIdsRefusesNegativeOnes) {
  const auto& tok = bart_fixture();
  EXPECT_EQ(tok.decode({68, 99999, 379}), "a dog");  // tokenizers skips ids it has no token for
  EXPECT_THAT(ls::test::error_of([&] { tok.decode({-1}); }), HasSubstr("-1"));
  EXPECT_THAT(ls::test::error_of([&] { tok.token_text(99999); }), HasSubstr("vocab.json"));
  EXPECT_EQ(tok.encode("\xff" "a", false), tok.encode("\xef\xbf\xbd" "a", false));  // invalid UTF-8 is U+FFFD
}

TEST(BartTokenizerErrors, OneLineErrorsNameTheFile) {
  using ls::test::error_of;
  auto load = [](const fs::path& p) { return [p] { BartTokenizer::load(p, {}); }; };
  EXPECT_THAT(error_of(load("/nonexistent/florence")), HasSubstr("/nonexistent/florence: no such folder"));

  ls::test::TempDir dir;
  bart_write(dir / "merges.txt", "#version: 0.2\n");
  EXPECT_THAT(error_of(load(dir.path())), HasSubstr("vocab.json: missing"));
  bart_write(dir / "vocab.json", "{\"a\": 0,");
  EXPECT_THAT(error_of(load(dir.path())), HasSubstr("vocab.json: not valid JSON"));
  bart_write(dir / "vocab.json", R"({"a": 0, "b": -1})");
  EXPECT_THAT(error_of(load(dir.path())), HasSubstr("vocab.json: the id of 'b' should be a non-negative integer"));
  bart_write(dir / "vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  bart_write(dir / "merges.txt", "#version: 0.2\na b\na  b\n");
  EXPECT_THAT(error_of(load(dir.path())), HasSubstr("merges.txt: line 3 should be two symbols separated by one space"));
  bart_write(dir / "merges.txt", "a b\nb c\n");
  EXPECT_THAT(error_of(load(dir.path())), HasSubstr("merges.txt: merge 2 ('b c') uses 'c', which the vocabulary lacks"));
  bart_write(dir / "merges.txt", "a b\n");
  EXPECT_EQ(BartTokenizer::load(dir.path(), {}).encode("ab", false), (BartIds{2}));
  bart_write(dir / "tokenizer_config.json", "[1");
  EXPECT_THAT(error_of(load(dir.path())), HasSubstr("tokenizer_config.json: not valid JSON"));
  fs::remove(dir / "tokenizer_config.json");
  fs::remove(dir / "merges.txt");
  EXPECT_THAT(error_of(load(dir.path())), HasSubstr("merges.txt: missing"));
  for (const auto& msg : {error_of(load(dir.path())), error_of(load("/nonexistent/florence"))})
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

// Speed sanity (no bound: it depends on the machine) and one shared cache filled by four threads.
TEST(BartTokenizerSpeed, CaptionsPerSecondAndThreadSafety) {
  auto tok = BartTokenizer::load(bart_fixture_dir(), bart_with_image());  // a fresh BPE cache
  std::vector<std::string> texts;
  std::vector<BartIds> expected;
  for (const auto& c : bart_cases().at("encode")) {
    texts.push_back(c.at("text").get<std::string>());
    expected.push_back(c.at("ids").get<BartIds>());
  }
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round)
        for (size_t i = 0; i < texts.size(); ++i) failures[t] += tok.encode(texts[i]) != expected[i];
    });
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);

  std::string caption;
  for (int i = 0; caption.size() < (1 << 20); ++i)
    caption += "The image shows a small brown dog number " + std::to_string(i) + " sitting on a bench. ";
  auto t0 = std::chrono::steady_clock::now();
  auto ids = tok.encode(caption);
  double encode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  t0 = std::chrono::steady_clock::now();
  std::string back = tok.decode(ids, true);
  double decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("bart tokenizer: 1 MiB of captions -> %zu ids: encode %.3f s, decode %.3f s\n", ids.size(), encode_s,
              decode_s);
  EXPECT_EQ(back, caption);
}

}  // namespace
