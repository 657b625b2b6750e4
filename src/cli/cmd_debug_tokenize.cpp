// `lorastudio debug tokenize --vocab FILE --input LINES.txt --output OUT.json`: CLIP token ids
// (start + body + end, unpadded) for each input line, as a JSON array of arrays, so the
// tokenizer can be compared with OpenAI CLIP's simple_tokenizer from outside.
#include <memory>
#include <string>

#include "cli/commands.h"
#include "core/atomic_file.h"
#include "text/clip_tokenizer.h"

namespace ls::cli {
namespace {

struct TokenizeOptions {
  std::string vocab;
  std::string input;
  std::string output;
};

// Lines are split at '\n' only; a final newline does not start another line.
std::vector<std::string> split_lines(const std::string& content) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < content.size()) {
    size_t nl = content.find('\n', start);
    if (nl == std::string::npos) nl = content.size();
    lines.push_back(content.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

void run_tokenize(const TokenizeOptions& opt) {
  auto tokenizer = text::ClipTokenizer::from_file(opt.vocab);
  std::string content = core::read_file(opt.input);
  std::string json = "[";
  bool first_line = true;
  for (const auto& line : split_lines(content)) {
    json += first_line ? "\n[" : ",\n[";
    first_line = false;
    bool first_id = true;
    for (int64_t id : tokenizer.tokenize(line)) {
      if (!first_id) json += ',';
      first_id = false;
      json += std::to_string(id);
    }
    json += ']';
  }
  json += "\n]\n";
  core::write_file_atomic(opt.output, json);
}

}  // namespace

void register_debug_tokenize(CLI::App& debug) {
  auto opt = std::make_shared<TokenizeOptions>();
  auto* cmd = debug.add_subcommand("tokenize", "CLIP token ids of each line of a text file, as JSON");
  cmd->add_option("--vocab", opt->vocab,
                  "bpe_simple_vocab_16e6.txt.gz, a vocab.json (merges.txt beside it) or a tokenizer folder")
      ->required();
  cmd->add_option("--input", opt->input, "UTF-8 text file, one prompt per line")->required();
  cmd->add_option("--output", opt->output, "JSON file to write: one array of ids per line")->required();
  cmd->callback([opt] { run_tokenize(*opt); });
}

}  // namespace ls::cli
