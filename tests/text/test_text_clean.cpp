// CLIP's text cleaning piece by piece, against values CPython 3.11 gives (html.unescape,
// bytes.decode("utf-8", "replace"), str.lower) and values read off ftfy 6.3.1's fixers.
#include <functional>

#include "support/support.h"
#include "text/html_unescape.h"
#include "text/text_clean.h"
#include "text/unicode.h"

namespace {

using ls::text::u32_to_utf8;
using ls::text::utf8_to_u32;

// Applies a UTF-32 function to UTF-8 text, so expectations read as plain strings.
std::string run_on(const std::function<std::u32string(std::u32string_view)>& f, const std::string& in) {
  return u32_to_utf8(f(utf8_to_u32(in)));
}

TEST(Utf8, InvalidSequencesBecomeOneReplacementPerMaximalPrefix) {
  EXPECT_EQ(u32_to_utf8(utf8_to_u32("\xE0\x80")), "\uFFFD\uFFFD");          // E0 needs A0..BF next
  EXPECT_EQ(u32_to_utf8(utf8_to_u32("\xED\xA0\x80")), "\uFFFD\uFFFD\uFFFD");  // encoded surrogate
  EXPECT_EQ(u32_to_utf8(utf8_to_u32("\xF0\x9F\x98")), "\uFFFD");             // truncated emoji
  EXPECT_EQ(u32_to_utf8(utf8_to_u32("a\xC3")), "a\uFFFD");
  EXPECT_EQ(u32_to_utf8(utf8_to_u32("\xC0\xAF")), "\uFFFD\uFFFD");           // overlong '/'
  EXPECT_EQ(u32_to_utf8(utf8_to_u32("\xF4\x90\x80\x80")), "\uFFFD\uFFFD\uFFFD\uFFFD");  // > U+10FFFF
  EXPECT_EQ(u32_to_utf8(utf8_to_u32("\xE2\x82\xAC\x80")), "\u20AC\uFFFD");
  std::u32string emoji = utf8_to_u32("\xF0\x9F\x98\x80");
  ASSERT_EQ(emoji.size(), 1u);
  EXPECT_EQ(emoji[0], 0x1F600u);
}

TEST(PythonCase, LowerAndUpperUseFullMappingsAndFinalSigma) {
  EXPECT_EQ(run_on(ls::text::py_lower, "\u0130stanbul"), "i\u0307stanbul");
  EXPECT_EQ(run_on(ls::text::py_lower, "\u03A3\u0391\u03A3 \u039F\u0394\u039F\u03A3"),
            "\u03C3\u03B1\u03C2 \u03BF\u03B4\u03BF\u03C2");
  EXPECT_EQ(run_on(ls::text::py_lower, "\u1E9E"), "\u00DF");
  EXPECT_EQ(run_on(ls::text::py_lower, "\u01C5"), "\u01C6");
  EXPECT_EQ(run_on(ls::text::py_lower, "\u216B"), "\u217B");  // roman numeral twelve (Nl) lowers
  EXPECT_EQ(run_on(ls::text::py_lower, "MiXeD 123"), "mixed 123");
  EXPECT_EQ(run_on(ls::text::py_upper, "\u00DF"), "SS");
}

TEST(HtmlUnescape, MatchesCPython) {
  const std::pair<const char*, const char*> cases[] = {
      {"&amp;", "&"},           {"&ampx", "&x"},       {"&amp", "&"},
      {"&notit;", "\u00ACit;"},  {"&#65;", "A"},        {"&#x41", "A"},
      {"&#128;", "\u20AC"},      {"&#0;", "\uFFFD"},    {"&#xD800;", "\uFFFD"},
      {"&#1;", ""},              {"&#99999999999;", "\uFFFD"}, {"&bogus;", "&bogus;"},
      {"&#;", "&#;"},            {"&#x;", "&#x;"},      {"&CounterClockwiseContourIntegral;", "\u2233"},
      {"&#13;", "\r"},           {"&lt", "<"},          {"a&b", "a&b"},
      {"&&lt;", "&<"},           {"&#x110000;", "\uFFFD"}, {"&#129;", "\u0081"},
      {"&#xFFFE;", ""},          {"&NotEqualTilde;", "\u2242\u0338"}, {"&amp;lt;", "&lt;"},
      {"&Eacute", "\u00C9"},     {"&eacutex", "\u00E9x"},
  };
  for (const auto& [in, out] : cases) EXPECT_EQ(run_on(ls::text::html_unescape, in), out) << in;
}

TEST(FtfyUnescapeHtml, OnlySemicolonReferencesAndAllCapsNames) {
  const std::pair<const char*, const char*> cases[] = {
      {"&lt;3", "<3"},
      {"&NTILDE; &ntilde; &Ntilde; &nTILDE;", "\u00D1 \u00F1 \u00D1 &nTILDE;"},
      {"BUNDESSTRA&SZLIG;E", "BUNDESSTRASSE"},
      {"P&EACUTE;REZ", "P\u00C9REZ"},
      {"&GTCIR;", "&GTCIR;"},  // html.unescape reads "&GT" + "CIR;", so no all-caps entry
      {"this&not that", "this&not that"},
      {"&amp", "&amp"},
      {"&#65a;", "&#65a;"},  // html.unescape decodes only "&#65", leaving the ';'
      {"&#x41;&#65;", "AA"},
      {"&amp;amp;", "&amp;"},  // one level per call
      {"&abcdefghijklmnopqrstuvwxy;", "&abcdefghijklmnopqrstuvwxy;"},  // 25 characters: no match
  };
  for (const auto& [in, out] : cases) EXPECT_EQ(run_on(ls::text::ftfy_unescape_html, in), out) << in;
}

TEST(FtfyFixers, EachFixerAlone) {
  EXPECT_EQ(run_on(ls::text::fix_c1_controls, "\u0080\u0081\u0085\u0091\u009F"), "\u20AC\u0081\u2026\u2018\u0178");
  EXPECT_EQ(run_on(ls::text::fix_latin_ligatures, "\uFB02u\uFB03e\uFB06 \u01C6 \u0149"),
            "fluffiest d\u017E \u02BCn");
  EXPECT_EQ(run_on(ls::text::fix_character_width, "\uFF2C\uFF2F\uFF35\uFF24\u3000\uFF2E\uFF2F\uFF29\uFF33\uFF25\uFF33"),
            "LOUD NOISES");
  EXPECT_EQ(run_on(ls::text::fix_character_width, "\uFF35\uFF80\uFF70\uFF9D"), "U\u30BF\u30FC\u30F3");
  EXPECT_EQ(run_on(ls::text::uncurl_quotes, "\u201Chere\u2019s a \u02BCtest\u201D \u201E\u201F"),
            "\"here's a 'test\" \"\"");
  EXPECT_EQ(run_on(ls::text::fix_line_breaks, "a\r\nb\rc\u2028d\u2029e\u0085f"), "a\nb\nc\nd\ne\nf");
  EXPECT_EQ(run_on(ls::text::remove_terminal_escapes, "\x1B[36;44mblue\x1B[0m \x1B[12 \x1B[\u0663m"),
            "blue \x1B[12 ");
  using namespace std::string_literals;
  EXPECT_EQ(run_on(ls::text::remove_control_chars, "a\0b\x1B\x7F\tc\u200B\uFEFF\uFFFCd\u206A"s), "ab\tc\u200Bd");
}

TEST(FtfyFixText, RepeatsUntilStableAndStopsUnescapingAfterAngleBrackets) {
  auto fix = [](const std::string& s) { return run_on(ls::text::ftfy_fix_text, s); };
  EXPECT_EQ(fix("\u201Csmart quotes\u201D"), "\"smart quotes\"");
  EXPECT_EQ(fix("cafe\u0301"), "caf\u00E9");                // NFC
  EXPECT_EQ(fix("&amp;amp;amp;"), "&");                      // unescaped until stable
  EXPECT_EQ(fix("&#x2019;"), "'");                           // unescape, then uncurl
  EXPECT_EQ(fix("&#146;"), "'");                             // cp1252 via html.unescape, then uncurl
  EXPECT_EQ(fix("I&#x92;m\u0085"), "I'm\u2026");              // C1 control fixed before line breaks
  EXPECT_EQ(fix("<b>&amp;</b>"), "<b>&amp;</b>");             // looks like HTML: entities kept
  EXPECT_EQ(fix("&amp;\n<\n&amp;"), "&\n<\n&amp;");           // '<' turns unescaping off from its line on
  EXPECT_EQ(fix("\uFEFFParty like\r\nit&rsquo;s 1999!"), "Party like\nit's 1999!");
  EXPECT_EQ(fix("\uFF21 full A"), "A full A");
  EXPECT_EQ(fix("\uFB01ne \uFB02ower"), "fine flower");
  EXPECT_EQ(fix("\u00BD \u00B2 \u2167"), "\u00BD \u00B2 \u2167");  // NFC, not NFKC
}

TEST(ClipClean, BasicCleanWhitespaceCleanLower) {
  auto clean = [](const std::string& s) { return u32_to_utf8(ls::text::clip_clean(s)); };
  EXPECT_EQ(clean("  Hello\t\tWORLD \n "), "hello world");
  EXPECT_EQ(clean("&amp;lt;3"), "<3");
  EXPECT_EQ(clean("a <b> &amp;amp;amp;lt;"), "a <b> &amp;lt;");  // ftfy off ('<'), then html.unescape twice
  EXPECT_EQ(clean("\u00A0leading nbsp"), "leading nbsp");
  EXPECT_EQ(clean("zero\u200Bwidth"), "zero\u200Bwidth");  // U+200B is not White_Space
  EXPECT_EQ(clean("\u3000ideographic\u2003space"), "ideographic space");
  EXPECT_EQ(clean("\u0130"), "i\u0307");
  EXPECT_EQ(clean(""), "");
}

}  // namespace
