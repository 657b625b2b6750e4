// Loading CLIP's BPE vocabulary: OpenAI's merges file (openai/CLIP clip/simple_tokenizer.py,
// SimpleTokenizer.__init__) or a Hugging Face vocab.json + merges.txt (transformers
// models/clip/tokenization_clip.py). Both end as ids over which BPE runs (clip_tokenizer.cpp).
#include "text/clip_vocab.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/unicode.h"

namespace ls::text {
namespace fs = std::filesystem;
namespace {

// merges[1 : 49152 - 256 - 2 + 1]: 49152 ids minus 256 bytes and 2 specials, less the 256 byte
// symbols with "</w>" already counted by CLIP's arithmetic -> 48894 merges, 49408 ids.
constexpr size_t kClipMerges = 49152 - 256 - 2;
const std::string kWordEnd = "</w>";

struct MergeLine {
  std::string left, right;
  size_t line_no;
};

// The byte values in bytes_to_unicode() order: printable Latin-1 first, then the rest.
std::array<uint8_t, 256> byte_order() {
  std::array<uint8_t, 256> order{};
  std::array<bool, 256> printable{};
  size_t k = 0;
  for (int b = 0; b < 256; ++b) {
    printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable[b]) order[k++] = static_cast<uint8_t>(b);
  }
  for (int b = 0; b < 256; ++b)
    if (!printable[b]) order[k++] = static_cast<uint8_t>(b);
  return order;
}

std::array<char32_t, 256> make_byte_chars() {
  std::array<char32_t, 256> chars{};
  auto order = byte_order();
  char32_t next = 256;  // non-printable bytes get U+0100, U+0101, ... in byte order
  for (uint8_t b : order) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    chars[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return chars;
}

std::string byte_symbol(uint8_t b) {
  std::string s;
  append_utf8(s, clip_byte_chars()[b]);
  return s;
}

std::string_view trim_ascii(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// One line of the merges file; returns false once CLIP's 48894 merges are in.
bool parse_merge_line(std::string_view raw, size_t line_no, size_t& blank_line, std::vector<MergeLine>& merges,
                      const fs::path& path) {
  if (line_no == 0) return true;  // "#version: 0.2" header, skipped by CLIP whatever it says
  std::string_view line = trim_ascii(raw);
  if (line.empty()) {
    if (blank_line == 0) blank_line = line_no;
    return true;
  }
  LS_CHECK(blank_line == 0, path.string(), ": line ", blank_line + 1,
           " is empty inside the merge list; the file looks damaged, use an intact copy");
  size_t sp = line.find_first_of(" \t");
  std::string_view left = line.substr(0, sp);
  std::string_view right = sp == std::string_view::npos ? std::string_view() : trim_ascii(line.substr(sp));
  LS_CHECK(!right.empty() && right.find_first_of(" \t") == std::string_view::npos, path.string(), ": line ",
           line_no + 1, " should be two symbols separated by a space, got '", line.substr(0, 60),
           "'; is this a CLIP merges file (bpe_simple_vocab_16e6.txt.gz or merges.txt)?");
  merges.push_back({std::string(left), std::string(right), line_no});
  return merges.size() < kClipMerges;
}

// Reads the first 48894 merges; zlib reads plain text through the same calls, and stopping
// early skips decompressing the 213k merges CLIP never uses.
std::vector<MergeLine> read_merges(const fs::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  LS_CHECK(file != nullptr, path.string(), ": cannot open (", std::strerror(errno), "); check the path");
  gzbuffer(file, 1 << 17);
  std::vector<MergeLine> merges;
  merges.reserve(kClipMerges);
  std::string pending;
  std::vector<char> buf(1 << 16);
  size_t line_no = 0, blank_line = 0;
  bool more = true;
  while (more) {
    int n = gzread(file, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int code = 0;
      std::string why = gzerror(file, &code);
      gzclose(file);
      LS_FAIL(path.string(), ": read error (", why, "); the file looks damaged, use an intact copy");
    }
    if (n == 0) break;
    pending.append(buf.data(), static_cast<size_t>(n));
    size_t start = 0, nl;
    while (more && (nl = pending.find('\n', start)) != std::string::npos) {
      more = parse_merge_line(std::string_view(pending).substr(start, nl - start), line_no++, blank_line, merges, path);
      start = nl + 1;
    }
    pending.erase(0, start);
  }
  if (more && !pending.empty()) parse_merge_line(pending, line_no++, blank_line, merges, path);
  gzclose(file);
  LS_CHECK(!merges.empty(), path.string(), ": holds no merges; pass CLIP's bpe_simple_vocab_16e6.txt.gz or a merges.txt");
  return merges;
}

int32_t find_id(const ClipVocab& v, const std::string& token) {
  auto it = v.ids.find(token);
  return it == v.ids.end() ? -1 : it->second;
}

// Byte ids, merge table and special ids from `tokens`/`ids` (already filled).
void finish_vocab(ClipVocab& v, const std::vector<MergeLine>& merges, const fs::path& merges_path,
                  const fs::path& vocab_path) {
  for (int b = 0; b < 256; ++b) {
    std::string sym = byte_symbol(static_cast<uint8_t>(b));
    v.byte_ids[b] = find_id(v, sym);
    v.byte_end_ids[b] = find_id(v, sym + kWordEnd);
    LS_CHECK(v.byte_ids[b] >= 0 && v.byte_end_ids[b] >= 0, vocab_path.string(), ": lacks the byte symbol '", sym,
             "' (or '", sym, kWordEnd, "'); is this a CLIP vocabulary?");
  }
  v.merges.reserve(merges.size() * 2);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& m = merges[rank];
    int32_t left = find_id(v, m.left), right = find_id(v, m.right);
    if (left < 0 || right < 0) continue;  // a symbol no word can contain: the merge never fires
    int32_t merged = find_id(v, m.left + m.right);
    LS_CHECK(merged >= 0, merges_path.string(), ": line ", m.line_no + 1, " makes '", m.left + m.right, "', which ",
             vocab_path.filename().string(), " lacks; use the vocab.json and merges.txt of one tokenizer");
    v.merges[ClipVocab::pair_key(left, right)] = {static_cast<int32_t>(rank), merged};  // a repeat: last rank wins
  }
  v.start_id = find_id(v, "<|startoftext|>");
  v.end_id = find_id(v, "<|endoftext|>");
  LS_CHECK(v.start_id >= 0 && v.end_id >= 0, vocab_path.string(),
           ": lacks <|startoftext|> or <|endoftext|>; is this a CLIP vocabulary?");
}

// SimpleTokenizer.__init__: bytes, bytes + "</w>", one token per merge, then the two specials.
ClipVocab from_merges_file(const fs::path& path) {
  auto merges = read_merges(path);
  ClipVocab v;
  v.source = path;
  v.tokens.reserve(512 + merges.size() + 2);
  for (uint8_t b : byte_order()) v.tokens.push_back(byte_symbol(b));
  for (size_t i = 0; i < 256; ++i) v.tokens.push_back(v.tokens[i] + kWordEnd);
  for (const auto& m : merges) v.tokens.push_back(m.left + m.right);
  v.tokens.push_back("<|startoftext|>");
  v.tokens.push_back("<|endoftext|>");
  v.ids.reserve(v.tokens.size() * 2);
  for (size_t i = 0; i < v.tokens.size(); ++i) v.ids[v.tokens[i]] = static_cast<int32_t>(i);  // last id wins, as dict(zip())
  finish_vocab(v, merges, path, path);
  return v;
}

ClipVocab from_hf_pair(const fs::path& vocab_json, const fs::path& merges_txt) {
  std::ifstream in(vocab_json, std::ios::binary);
  LS_CHECK(in.good(), vocab_json.string(), ": cannot open for reading; check the path");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    LS_FAIL(vocab_json.string(), ": not valid JSON (", e.what(), "); use a tokenizer's vocab.json");
  }
  LS_CHECK(j.is_object() && !j.empty(), vocab_json.string(), ": should be a JSON object token -> id");
  ClipVocab v;
  v.source = vocab_json;
  v.ids.reserve(j.size() * 2);
  for (const auto& [token, id] : j.items()) {
    LS_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (1 << 24), vocab_json.string(),
             ": the id of '", token, "' should be a non-negative integer, got ", id.dump());
    auto i = id.get<int32_t>();
    if (static_cast<size_t>(i) >= v.tokens.size()) v.tokens.resize(static_cast<size_t>(i) + 1);
    v.tokens[static_cast<size_t>(i)] = token;
    v.ids[token] = i;
  }
  finish_vocab(v, read_merges(merges_txt), merges_txt, vocab_json);
  return v;
}

}  // namespace

const std::array<char32_t, 256>& clip_byte_chars() {
  static const std::array<char32_t, 256> chars = make_byte_chars();
  return chars;
}

const std::array<int16_t, 0x144>& clip_char_bytes() {
  static const auto table = [] {
    std::array<int16_t, 0x144> t{};
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[clip_byte_chars()[b]] = static_cast<int16_t>(b);
    return t;
  }();
  return table;
}

ClipVocab load_clip_vocab(const fs::path& path) {
  const char* kinds = "pass CLIP's bpe_simple_vocab_16e6.txt.gz, a vocab.json with merges.txt beside it, "
                      "or a tokenizer folder holding both";
  LS_CHECK(fs::exists(path), path.string(), ": no such file or folder; ", kinds);
  if (fs::is_directory(path)) {
    fs::path vocab = path / "vocab.json", merges = path / "merges.txt";
    LS_CHECK(fs::exists(vocab) && fs::exists(merges), path.string(), ": the folder lacks vocab.json or merges.txt; ",
             kinds);
    return from_hf_pair(vocab, merges);
  }
  if (path.extension() == ".json") {
    fs::path merges = path.parent_path() / "merges.txt";
    LS_CHECK(fs::exists(merges), path.string(), ": no merges.txt beside it; ", kinds);
    return from_hf_pair(path, merges);
  }
  return from_merges_file(path);
}

}  // namespace ls::text
