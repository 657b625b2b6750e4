#include "lora/block_weights.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <regex>

#include "core/error.h"
#include "core/strings.h"

namespace ls::lora {
namespace {

constexpr double kBlockPi = 3.14159265358979323846;

// Python's float(text): surrounding blanks allowed, decimal or inf/nan only (strtod would also
// take hex, Python does not).
double block_float(const std::string& key, const std::string& text) {
  const std::string t = core::trim(text);
  char* end = nullptr;
  errno = 0;
  const double v = t.empty() || t.find_first_of("xX") != std::string::npos ? 0 : std::strtod(t.c_str(), &end);
  LS_CHECK(!t.empty() && t.find_first_of("xX") == std::string::npos && end == t.c_str() + t.size(),
           "network_args ", key, ": '", text, "' is not a number");
  return v;
}

// Python's int(text): an optional sign and digits ("4.0" fails there too).
int64_t block_int(const std::string& key, const std::string& text) {
  static const std::regex integer(R"([+-]?[0-9]+)");
  const std::string t = core::trim(text);
  LS_CHECK(std::regex_match(t, integer), "network_args ", key, ": '", text, "' is not an integer");
  return std::stoll(t);
}

std::vector<std::string> block_split(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    parts.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return parts;
    start = comma + 1;
  }
}

// parse_block_lr_kwargs: an empty entry is 0.0 ("1,,1").
std::vector<double> block_lr_list(const std::string& key, const std::string& text) {
  std::vector<double> out;
  for (const std::string& s : block_split(text)) out.push_back(s.empty() ? 0.0 : block_float(key, s));
  return out;
}

// get_lr_weight's get_list: "name" or "name+base" over the 9 down or up blocks.
std::vector<double> block_lr_preset(const std::string& key, const std::string& text) {
  const std::vector<std::string> tokens = [&] {
    std::vector<std::string> t;
    size_t start = 0;
    for (size_t plus; (plus = text.find('+', start)) != std::string::npos; start = plus + 1)
      t.push_back(text.substr(start, plus - start));
    t.push_back(text.substr(start));
    return t;
  }();
  const std::string& name = tokens[0];
  const double base = tokens.size() > 1 ? block_float(key, tokens[1]) : 0.0;
  const int n = kSdxlDownUpBlocks;
  std::vector<double> w;
  for (int k = 0; k < n; ++k) {
    const int i = (name == "cosine" || name == "reverse_linear") ? n - 1 - k : k;  // reversed(range(n))
    const double x = static_cast<double>(i) / (n - 1);
    if (name == "cosine" || name == "sine") w.push_back(std::sin(kBlockPi * x / 2) + base);
    else if (name == "linear" || name == "reverse_linear") w.push_back(x + base);
    else if (name == "zeros") w.push_back(0.0 + base);
    else
      LS_FAIL("network_args ", key, ": unknown preset '", name, "'; give 9 comma-separated weights or one of cosine, ",
              "sine, linear, reverse_linear, zeros (optionally +BASE, e.g. sine+0.5); a single weight needs a ',' ",
              "(kohya stops on this too)");
  }
  return w;
}

// get_block_lr_weight for SDXL (the 23 entries) from the three optional texts.
std::optional<std::vector<double>> block_lr_weights(const std::map<std::string, std::string>& args,
                                                    double zero_threshold, std::vector<std::string>* notes) {
  auto get = [&](const char* key) -> std::optional<std::string> {
    auto it = args.find(key);
    return it == args.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  const auto down_text = get("down_lr_weight"), mid_text = get("mid_lr_weight"), up_text = get("up_lr_weight");
  if (!down_text && !mid_text && !up_text) return std::nullopt;
  // kohya: a down/up text with a ',' is a list, else a preset name; mid is always a list.
  auto down_or_up = [&](const char* key, const std::optional<std::string>& t) -> std::optional<std::vector<double>> {
    if (!t) return std::nullopt;
    return t->find(',') != std::string::npos ? block_lr_list(key, *t) : block_lr_preset(key, *t);
  };
  std::optional<std::vector<double>> down = down_or_up("down_lr_weight", down_text);
  std::optional<std::vector<double>> up = down_or_up("up_lr_weight", up_text);
  std::optional<std::vector<double>> mid;
  if (mid_text) mid = block_lr_list("mid_lr_weight", *mid_text);
  const size_t n = kSdxlDownUpBlocks, n_mid = kSdxlMidBlocks;
  if ((up && up->size() > n) || (down && down->size() > n)) {
    // kohya cuts both lists, and fails on the absent one.
    LS_CHECK(up && down, "network_args ", up ? "up_lr_weight" : "down_lr_weight", " has ", (up ? up : down)->size(),
             " values but SDXL has ", n, " ", up ? "output" : "input", " blocks; kohya cuts the list only when ",
             up ? "down_lr_weight" : "up_lr_weight", " is also given (and stops otherwise): give ", n, " values");
    if (notes) notes->push_back(str_cat("network_args: down_lr_weight / up_lr_weight have more than ", n,
                                        " values; those after the ", n, "th are ignored (kohya)"));
    up->resize(std::min(up->size(), n));
    down->resize(std::min(down->size(), n));
  }
  if (mid && mid->size() > n_mid) {
    if (notes) notes->push_back(str_cat("network_args: mid_lr_weight has more than ", n_mid,
                                        " values; those after the ", n_mid, "rd are ignored (kohya)"));
    mid->resize(n_mid);
  }
  for (auto* list : {&down, &up, &mid}) {
    const size_t want = list == &mid ? n_mid : n;
    if (*list && (*list)->size() < want) {
      if (notes) notes->push_back(str_cat("network_args: ", list == &down ? "down" : list == &up ? "up" : "mid",
                                          "_lr_weight has ", (*list)->size(), " of ", want,
                                          " values; the rest are 1.0 (kohya)"));
      (*list)->resize(want, 1.0);
    }
  }
  // Given weights at or below the threshold become 0 (their blocks then get no LoRA).
  std::vector<double> out{1.0};  // the embeddings' block
  for (auto* list : {&down, &mid, &up}) {
    const size_t want = list == &mid ? n_mid : n;
    for (size_t i = 0; i < want; ++i) out.push_back(*list ? ((**list)[i] > zero_threshold ? (**list)[i] : 0.0) : 1.0);
  }
  out.push_back(1.0);  // out
  return out;
}

template <typename T, typename F>
std::vector<T> block_values(const std::string& key, const std::string& text, F parse) {
  std::vector<T> out;
  for (const std::string& s : block_split(text)) out.push_back(parse(key, s));
  LS_CHECK(out.size() == kSdxlBlockCount, "network_args ", key, " must have ", kSdxlBlockCount,
           " values for SDXL (the embeddings, 9 input blocks, 3 middle, 9 output blocks, out), got ", out.size());
  return out;
}

}  // namespace

int kohya_block_index(const std::string& lora_name, bool is_sdxl) {
  if (!is_sdxl) {
    static const std::regex updown(R"((up|down)_blocks_(\d+)_(resnets|upsamplers|downsamplers|attentions)_(\d+)_)");
    std::smatch m;
    if (std::regex_search(lora_name, m, updown)) {
      const int i = std::stoi(m[2]), j = std::stoi(m[4]);
      const int idx = m[3] == "upsamplers" || m[3] == "downsamplers" ? 3 * i + 2 : 3 * i + j;
      return m[1] == "down" ? 1 + idx : 12 + 1 + idx;
    }
    return lora_name.find("mid_block_") != std::string::npos ? 12 : -1;
  }
  const std::string prefix = "lora_unet_";
  if (lora_name.rfind(prefix, 0) != 0) return -1;
  const std::string name = lora_name.substr(prefix.size());
  // int(name.split("_")[2]): the number after "input_blocks_" etc.
  auto number = [&](size_t at) {
    const size_t end = name.find('_', at);
    return block_int("block index of " + lora_name, name.substr(at, end == std::string::npos ? end : end - at));
  };
  if (name.rfind("time_embed_", 0) == 0 || name.rfind("label_emb_", 0) == 0) return 0;
  if (name.rfind("input_blocks_", 0) == 0) return 1 + static_cast<int>(number(13));
  if (name.rfind("middle_block_", 0) == 0) return 10 + static_cast<int>(number(13));
  if (name.rfind("output_blocks_", 0) == 0) return 13 + static_cast<int>(number(14));
  if (name.rfind("out_", 0) == 0) return 22;
  return -1;
}

std::optional<double> BlockArgs::loraplus_ratio(bool unet) const {
  const std::optional<double>& part = unet ? loraplus_unet_lr_ratio : loraplus_text_encoder_lr_ratio;
  if (part && *part != 0.0) return part;
  return loraplus_lr_ratio;  // Python's `part or common`: a 0 or absent part ratio gives the common one
}

const std::vector<std::string>& block_arg_keys() {
  static const std::vector<std::string> keys = {
      "down_lr_weight", "mid_lr_weight", "up_lr_weight", "block_lr_zero_threshold", "block_dims", "block_alphas",
      "conv_block_dims", "conv_block_alphas", "loraplus_lr_ratio", "loraplus_unet_lr_ratio",
      "loraplus_text_encoder_lr_ratio"};
  return keys;
}

BlockArgs parse_block_args(const std::map<std::string, std::string>& args, int64_t network_dim, double network_alpha,
                           std::optional<int64_t> conv_dim, std::optional<double> conv_alpha,
                           std::vector<std::string>* notes) {
  auto get = [&](const char* key) -> const std::string* {
    auto it = args.find(key);
    return it == args.end() ? nullptr : &it->second;
  };
  BlockArgs out;
  const std::string* threshold = get("block_lr_zero_threshold");
  out.lr_weights = block_lr_weights(args, threshold ? block_float("block_lr_zero_threshold", *threshold) : 0.0, notes);
  const std::string* dims = get("block_dims");
  if (dims || out.lr_weights) {
    // get_block_dims_and_alphas: what is not given is network_dim / network_alpha (conv: conv_dim).
    BlockRanks r;
    r.dims = dims ? block_values<int64_t>("block_dims", *dims, block_int)
                  : std::vector<int64_t>(kSdxlBlockCount, network_dim);
    const std::string* alphas = get("block_alphas");
    r.alphas = alphas ? block_values<double>("block_alphas", *alphas, block_float)
                      : std::vector<double>(kSdxlBlockCount, network_alpha);
    if (const std::string* conv_dims = get("conv_block_dims")) {
      r.conv_dims = block_values<int64_t>("conv_block_dims", *conv_dims, block_int);
      const std::string* conv_alphas = get("conv_block_alphas");
      r.conv_alphas = conv_alphas ? block_values<double>("conv_block_alphas", *conv_alphas, block_float)
                                  : std::vector<double>(kSdxlBlockCount, conv_alpha.value_or(1.0));
    } else if (conv_dim) {
      r.conv_dims.assign(kSdxlBlockCount, *conv_dim);
      r.conv_alphas.assign(kSdxlBlockCount, conv_alpha.value_or(1.0));
    }
    for (const auto* list : {&r.dims, &r.conv_dims})
      for (int64_t d : *list)
        LS_CHECK(d >= 0, "network_args ", list == &r.dims ? "block_dims" : "conv_block_dims",
                 ": ranks must be >= 0 (0: no LoRA in that block), got ", d);
    // remove_block_dims_and_alphas: a block with lr weight 0 gets no modules.
    if (out.lr_weights) {
      for (size_t i = 0; i < out.lr_weights->size(); ++i) {
        if ((*out.lr_weights)[i] != 0.0) continue;
        r.dims[i] = 0;
        if (!r.conv_dims.empty()) r.conv_dims[i] = 0;
      }
    }
    out.ranks = std::move(r);
  } else if (notes) {
    // kohya reads these only in block mode (block_dims or an lr weight given).
    for (const char* key : {"block_alphas", "conv_block_dims", "conv_block_alphas"})
      if (get(key)) notes->push_back(str_cat("network_args ", key, " is ignored without block_dims or a *_lr_weight (kohya)"));
  }
  auto ratio = [&](const char* key) -> std::optional<double> {
    const std::string* t = get(key);
    return t ? std::optional<double>(block_float(key, *t)) : std::nullopt;
  };
  out.loraplus_lr_ratio = ratio("loraplus_lr_ratio");
  out.loraplus_unet_lr_ratio = ratio("loraplus_unet_lr_ratio");
  out.loraplus_text_encoder_lr_ratio = ratio("loraplus_text_encoder_lr_ratio");
  return out;
}

ModuleRank block_module_rank(const std::string& lora_name, bool conv3x3, bool in_conv_block, const BlockRanks& ranks) {
  if (in_conv_block && ranks.conv_dims.empty()) return {};
  const int idx = kohya_block_index(lora_name, true);
  LS_CHECK(idx >= 0 && idx < kSdxlBlockCount, "block_dims: the U-Net module ", lora_name,
           " has no SDXL block index; block-wise ranks need an SDXL U-Net");
  if (!conv3x3) return {ranks.dims[idx], ranks.alphas[idx]};
  if (ranks.conv_dims.empty()) return {};
  return {ranks.conv_dims[idx], ranks.conv_alphas[idx]};
}

}  // namespace ls::lora
