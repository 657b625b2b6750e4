// Loading BART's tokenizer files as transformers 5.23 does for BartTokenizer (= RobertaTokenizer on
// the tokenizers backend): vocab.json + merges.txt read as tokenizers' BPE::read_file reads them
// (tokenizers src/models/bpe/model.rs), or the model section of tokenizer.json when present
// (TokenizersBackend.convert_to_native_format), and the added tokens of the folder's configuration
// in the order PreTrainedTokenizerBase.from_pretrained and TokenizersBackend.__init__ add them.
#include "text/bart_vocab.h"

#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/clip_vocab.h"
#include "text/unicode.h"

namespace ls::text {
namespace fs = std::filesystem;
namespace {

using BartJson = nlohmann::json;
using BartMergeList = std::vector<std::pair<std::string, std::string>>;

// The named special tokens in PreTrainedTokenizerBase.SPECIAL_TOKENS_ATTRIBUTES order, with
// RobertaTokenizer's defaults.
constexpr std::pair<const char*, const char*> kBartNamed[] = {
    {"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"sep_token", "</s>"},
    {"pad_token", "<pad>"}, {"cls_token", "<s>"}, {"mask_token", "<mask>"}};
constexpr size_t kBartNamedCount = sizeof(kBartNamed) / sizeof(kBartNamed[0]);

BartJson bart_read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  LS_CHECK(in.good(), path.string(), ": cannot open for reading; check the path and permissions");
  try {
    return BartJson::parse(in);
  } catch (const nlohmann::json::exception& e) {
    LS_FAIL(path.string(), ": not valid JSON (", e.what(), "); use the tokenizer's original file");
  }
}

bool bart_flag(const BartJson& j, const char* key, bool fallback, const fs::path& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  LS_CHECK(it->is_boolean(), path.string(), ": \"", key, "\" should be true or false, got ", it->dump());
  return it->get<bool>();
}

// A token given as a string or as a serialized AddedToken ({"content": ..., "lstrip": ...}).
// Unset flags take tokenizers' AddedToken defaults: normalized = !special.
BartAddedToken bart_parse_added(const BartJson& j, bool default_special, const fs::path& path) {
  BartAddedToken t;
  t.special = default_special;
  if (j.is_string()) {
    t.content = j.get<std::string>();
    t.normalized = !t.special;
    return t;
  }
  LS_CHECK(j.is_object() && j.contains("content") && j["content"].is_string(), path.string(),
           ": an added token should be a string or an object with a \"content\" string, got ", j.dump().substr(0, 80));
  t.content = j["content"].get<std::string>();
  t.special = bart_flag(j, "special", default_special, path);
  t.single_word = bart_flag(j, "single_word", false, path);
  t.lstrip = bart_flag(j, "lstrip", false, path);
  t.rstrip = bart_flag(j, "rstrip", false, path);
  t.normalized = bart_flag(j, "normalized", !t.special, path);
  return t;
}

void bart_set_id(BartVocab& v, const std::string& token, int64_t id) {
  auto i = static_cast<size_t>(id);
  if (i >= v.tokens.size()) {
    v.tokens.resize(i + 1);
    v.present.resize(i + 1, 0);
  }
  v.tokens[i] = token;
  v.present[i] = 1;
  v.ids[token] = static_cast<int32_t>(id);
}

// BPE::read_file: an object token -> id; entries whose value is not a number are skipped, a
// number that is not a non-negative integer is an error.
void bart_read_vocab_object(BartVocab& v, const BartJson& j, const fs::path& path, bool skip_non_numbers) {
  LS_CHECK(j.is_object() && !j.empty(), path.string(), ": the vocabulary should be a non-empty JSON object token -> id");
  v.ids.reserve(j.size() * 2);
  for (const auto& [token, id] : j.items()) {
    if (!id.is_number() && skip_non_numbers) continue;
    LS_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (int64_t{1} << 31),
             path.string(), ": the id of '", token.substr(0, 60), "' should be a non-negative integer, got ", id.dump());
    bart_set_id(v, token, id.get<int64_t>());
  }
}

// BPE::read_file's merges: lines (LF or CRLF), any line starting with "#version" skipped, every
// other line exactly two symbols separated by one space (an empty line is an error too).
BartMergeList bart_read_merges_txt(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  LS_CHECK(in.good(), path.string(), ": cannot open for reading; check the path and permissions");
  BartMergeList merges;
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("#version", 0) == 0) continue;
    size_t sp = line.find(' ');
    bool two = sp != std::string::npos && line.find(' ', sp + 1) == std::string::npos;
    LS_CHECK(two, path.string(), ": line ", line_no, " should be two symbols separated by one space, got '",
             line.substr(0, 60), "'; use the tokenizer's original merges.txt");
    merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
  return merges;
}

BartMergeList bart_merges_from_json(const BartJson& model, const fs::path& path) {
  BartMergeList merges;
  auto it = model.find("merges");
  if (it == model.end()) return merges;
  LS_CHECK(it->is_array(), path.string(), ": model.merges should be a list");
  for (const auto& m : *it) {
    if (m.is_string()) {
      auto s = m.get<std::string>();
      size_t sp = s.find(' ');
      LS_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, path.string(),
               ": the merge '", s.substr(0, 60), "' should be two symbols separated by one space");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else {
      LS_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(), path.string(),
               ": a merge should be \"left right\" or [left, right], got ", m.dump().substr(0, 60));
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    }
  }
  return merges;
}

int32_t bart_find(const BartVocab& v, const std::string& token) {
  auto it = v.ids.find(token);
  return it == v.ids.end() ? -1 : it->second;
}

// BpeBuilder::build: every merge's parts and result must be tokens; a repeated pair keeps the
// last rank (the map is collected in file order).
void bart_build_merges(BartVocab& v, const BartMergeList& merges, const fs::path& path) {
  v.merges.reserve(merges.size() * 2);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    int32_t a = bart_find(v, left), b = bart_find(v, right), merged = bart_find(v, left + right);
    const std::string& missing = a < 0 ? left : b < 0 ? right : left + right;
    LS_CHECK(a >= 0 && b >= 0 && merged >= 0, path.string(), ": merge ", rank + 1, " ('", left, " ", right,
             "') uses '", missing, "', which the vocabulary lacks; use the vocab.json and merges.txt of one tokenizer");
    v.merges[BartVocab::pair_key(a, b)] = {static_cast<int32_t>(rank), merged};
  }
  const auto& chars = clip_byte_chars();  // GPT-2's bytes_to_unicode(), shared with CLIP
  for (int b = 0; b < 256; ++b) {
    std::string sym;
    append_utf8(sym, chars[b]);
    v.byte_ids[b] = bart_find(v, sym);
  }
}

void bart_append_list(std::vector<BartAddedToken>& out, const BartJson& j, const char* key, const fs::path& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  LS_CHECK(it->is_array(), path.string(), ": \"", key, "\" should be a list of tokens");
  for (const auto& t : *it) out.push_back(bart_parse_added(t, true, path));
}

// What the configuration says about added tokens, before they are put in order.
struct BartConfigTokens {
  std::map<int64_t, BartAddedToken> decoder;   // id -> token, as added_tokens_decoder is sorted
  std::optional<BartAddedToken> named[kBartNamedCount];  // declared named specials
  std::vector<BartAddedToken> extras;          // additional_special_tokens / extra_special_tokens
};

void bart_read_decoder(BartConfigTokens& c, const BartJson& decoder, const fs::path& path) {
  LS_CHECK(decoder.is_object(), path.string(), ": \"added_tokens_decoder\" should be an object id -> token");
  for (const auto& [key, tok] : decoder.items()) {
    int64_t id = -1;
    try {
      id = std::stoll(key);
    } catch (const std::exception&) {
    }
    LS_CHECK(id >= 0, path.string(), ": added_tokens_decoder key '", key, "' should be a token id");
    c.decoder[id] = bart_parse_added(tok, false, path);
  }
}

// The named specials and extra special tokens of tokenizer_config.json or special_tokens_map.json.
void bart_read_named(BartConfigTokens& c, const BartJson& j, bool default_special, const fs::path& path) {
  for (size_t k = 0; k < kBartNamedCount; ++k) {
    auto it = j.find(kBartNamed[k].first);
    if (it != j.end() && !it->is_null()) c.named[k] = bart_parse_added(*it, default_special, path);
  }
  bart_append_list(c.extras, j, "additional_special_tokens", path);
  bart_append_list(c.extras, j, "extra_special_tokens", path);
}

// from_pretrained: added_tokens_decoder of tokenizer_config.json when it has one; else the legacy
// files, later ones replacing earlier ones at the same id: added_tokens.json (special only when it
// names a declared special), then tokenizer.json's "added_tokens" (with their own flags).
BartConfigTokens bart_read_config(const fs::path& folder, const BartJson* tokenizer_json, const BartJson& config,
                                  const fs::path& config_path) {
  BartConfigTokens c;
  bart_read_named(c, config, false, config_path);
  if (config.contains("added_tokens_decoder")) {
    bart_read_decoder(c, config["added_tokens_decoder"], config_path);
    return c;
  }
  fs::path map_path = folder / "special_tokens_map.json";
  if (fs::exists(map_path)) bart_read_named(c, bart_read_json(map_path), true, map_path);
  fs::path added_path = folder / "added_tokens.json";
  if (fs::exists(added_path)) {
    std::set<std::string> declared;
    for (const auto& n : c.named)
      if (n) declared.insert(n->content);
    for (const auto& e : c.extras) declared.insert(e.content);
    BartJson added = bart_read_json(added_path);
    LS_CHECK(added.is_object(), added_path.string(), ": should be a JSON object token -> id");
    for (const auto& [token, id] : added.items()) {
      LS_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0, added_path.string(), ": the id of '", token,
               "' should be a non-negative integer, got ", id.dump());
      BartAddedToken t;
      t.content = token;
      t.special = declared.count(token) > 0;
      t.normalized = !t.special;
      c.decoder[id.get<int64_t>()] = t;
    }
  }
  if (tokenizer_json != nullptr && tokenizer_json->contains("added_tokens")) {
    const auto& list = (*tokenizer_json)["added_tokens"];
    fs::path path = folder / "tokenizer.json";
    LS_CHECK(list.is_array(), path.string(), ": \"added_tokens\" should be a list");
    for (const auto& t : list) {
      LS_CHECK(t.is_object() && t.contains("id") && t["id"].is_number_integer() && t["id"].get<int64_t>() >= 0,
               path.string(), ": an added token should have a non-negative \"id\", got ", t.dump().substr(0, 80));
      c.decoder[t["id"].get<int64_t>()] = bart_parse_added(t, false, path);
    }
  }
  return c;
}

// TokenizersBackend.__init__: the decoder's tokens by id, then each named special and extra token
// whose text is not among them yet; a non-special token spelled like a named special becomes special.
std::vector<BartAddedToken> bart_order_tokens(const BartConfigTokens& c, BartVocab& v) {
  std::vector<BartAddedToken> out;
  std::set<std::string> seen;
  for (const auto& [id, t] : c.decoder) {
    out.push_back(t);
    seen.insert(t.content);
  }
  std::set<std::string> named_texts;
  std::string* names[kBartNamedCount] = {&v.bos_token, &v.eos_token, &v.unk_token, &v.sep_token,
                                         &v.pad_token, &v.cls_token, nullptr};
  for (size_t k = 0; k < kBartNamedCount; ++k) {
    BartAddedToken t;
    t.content = kBartNamed[k].second;
    if (c.named[k]) t = *c.named[k];
    if (names[k] != nullptr) *names[k] = t.content;
    named_texts.insert(t.content);
    if (seen.insert(t.content).second) out.push_back(t);
  }
  for (const auto& t : c.extras)
    if (seen.insert(t.content).second) out.push_back(t);
  for (auto& t : out)
    if (!t.special && named_texts.count(t.content) > 0) t.special = true;
  return out;
}

}  // namespace

BartVocab load_bart_vocab(const fs::path& folder) {
  LS_CHECK(fs::is_directory(folder), folder.string(),
           ": no such folder; pass the model folder that holds vocab.json and merges.txt");
  BartVocab v;
  fs::path tokenizer_path = folder / "tokenizer.json", config_path = folder / "tokenizer_config.json";
  std::optional<BartJson> tokenizer_json;
  if (fs::exists(tokenizer_path)) tokenizer_json = bart_read_json(tokenizer_path);
  if (tokenizer_json && tokenizer_json->contains("model") && (*tokenizer_json)["model"].contains("vocab")) {
    const auto& model = (*tokenizer_json)["model"];
    LS_CHECK(model.value("type", std::string("BPE")) == "BPE", tokenizer_path.string(), ": the model is ",
             model.value("type", std::string()), ", not BPE; is this a BART tokenizer?");
    v.source = tokenizer_path;
    bart_read_vocab_object(v, model["vocab"], tokenizer_path, false);
    bart_build_merges(v, bart_merges_from_json(model, tokenizer_path), tokenizer_path);
  } else {
    fs::path vocab_path = folder / "vocab.json", merges_path = folder / "merges.txt";
    LS_CHECK(fs::exists(vocab_path), vocab_path.string(), ": missing; a BART tokenizer folder holds vocab.json and merges.txt");
    LS_CHECK(fs::exists(merges_path), merges_path.string(), ": missing; a BART tokenizer folder holds vocab.json and merges.txt");
    v.source = vocab_path;
    bart_read_vocab_object(v, bart_read_json(vocab_path), vocab_path, true);
    bart_build_merges(v, bart_read_merges_txt(merges_path), merges_path);
  }
  BartJson config = BartJson::object();
  if (fs::exists(config_path)) {
    config = bart_read_json(config_path);
    LS_CHECK(config.is_object(), config_path.string(), ": should be a JSON object");
    v.add_prefix_space = bart_flag(config, "add_prefix_space", false, config_path);
    v.split_special_tokens = bart_flag(config, "split_special_tokens", false, config_path);
  }
  auto tokens = bart_read_config(folder, tokenizer_json ? &*tokenizer_json : nullptr, config, config_path);
  v.config_tokens = bart_order_tokens(tokens, v);
  return v;
}

}  // namespace ls::text
