// OpenAI CLIP's text cleaning before BPE (openai/CLIP clip/simple_tokenizer.py: basic_clean =
// ftfy.fix_text + html.unescape twice + strip; whitespace_clean; lower), with ftfy 6.3.1's
// default fix_text (rspeer/python-ftfy ftfy/__init__.py, fixes.py, chardata.py) minus mojibake
// repair: see ftfy_fix_text.
#pragma once

#include <string>
#include <string_view>

namespace ls::text {

/// `ftfy.fix_text(text)` with ftfy's default TextFixerConfig, except `fix_encoding` (the
/// mojibake detector and re-decoder: a heuristic over ~400 characters and nine legacy code
/// pages, not exercised by prompts written as UTF-8) and `fix_surrogates` (UTF-32 decoded from
/// UTF-8 holds no surrogates). Per line (a '<' in a line turns HTML unescaping off from that
/// line on) and repeated until stable: unescape_html, fix_c1_controls, fix_latin_ligatures,
/// fix_character_width, uncurl_quotes, fix_line_breaks, remove_terminal_escapes,
/// remove_control_chars, NFC.
std::u32string ftfy_fix_text(std::u32string_view text);

/// The single ftfy fixers (ftfy.fixes), exposed for tests.
std::u32string fix_c1_controls(std::u32string_view text);
std::u32string fix_latin_ligatures(std::u32string_view text);
std::u32string fix_character_width(std::u32string_view text);
std::u32string uncurl_quotes(std::u32string_view text);
std::u32string fix_line_breaks(std::u32string_view text);
std::u32string remove_terminal_escapes(std::u32string_view text);
std::u32string remove_control_chars(std::u32string_view text);

/// `whitespace_clean(basic_clean(text)).lower()`: the exact string CLIP's regex splits.
std::u32string clip_clean(std::string_view utf8);

}  // namespace ls::text
