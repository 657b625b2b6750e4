// Where the CLIP vocabulary comes from when no --tokenizer is given: a diffusers folder's
// tokenizer/, a tokenizer/ folder or bpe_simple_vocab_16e6.txt.gz beside a single-file checkpoint,
// then $LORASTUDIO_TOKENIZER; and `sample` on a diffusers folder that carries its tokenizer.
#include <zlib.h>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include <opencv2/core.hpp>

#include "core/atomic_file.h"
#include "io/image.h"
#include "models/checkpoint.h"
#include "models/diffusers_folder.h"
#include "models/model_source.h"
#include "support/support.h"
#include "text/clip_tokenizer.h"

namespace {

namespace fs = std::filesystem;
using ls::models::find_tokenizer;

// Sets an environment variable for one scope.
class TokenizerEnvScope {
 public:
  explicit TokenizerEnvScope(const char* value) {
    if (const char* old = std::getenv(ls::models::kTokenizerEnv)) old_ = old, had_ = true;
    if (value) setenv(ls::models::kTokenizerEnv, value, 1);
    else unsetenv(ls::models::kTokenizerEnv);
  }
  ~TokenizerEnvScope() {
    if (had_) setenv(ls::models::kTokenizerEnv, old_.c_str(), 1);
    else unsetenv(ls::models::kTokenizerEnv);
  }

 private:
  std::string old_;
  bool had_ = false;
};

// The shared gz vocabulary as the vocab.json + merges.txt a diffusers folder ships.
void write_tokenizer_pair(const fs::path& dir) {
  fs::create_directories(dir);
  const auto clip = ls::text::ClipTokenizer::from_file(ls::test::kClipVocab);
  nlohmann::json vocab = nlohmann::json::object();
  for (int64_t id = 0; id < clip.vocab_size(); ++id) vocab[clip.token_text(id)] = id;
  std::ofstream(dir / "vocab.json") << vocab.dump();
  gzFile gz = gzopen(ls::test::kClipVocab, "rb");
  ASSERT_NE(gz, nullptr);
  std::ofstream merges(dir / "merges.txt");
  std::vector<char> line(4096);
  for (int i = 0; i < 1 + 48894 && gzgets(gz, line.data(), static_cast<int>(line.size())); ++i)
    merges << (i == 0 ? std::string("#version: 0.2\n") : std::string(line.data()));
  gzclose(gz);
}

TEST(TokenizerLookup, GivenThenBesideTheModelThenTheEnvironment) {
  TokenizerEnvScope no_env(nullptr);
  ls::test::TempDir dir;
  const fs::path model = dir / "m" / "model.safetensors";
  fs::create_directories(model.parent_path());
  ls::core::write_file_atomic(model, "x");
  EXPECT_EQ(find_tokenizer("given.txt.gz", model.string()), "given.txt.gz");
  EXPECT_EQ(find_tokenizer("", model.string()), "");
  EXPECT_NE(ls::test::error_of([&] { ls::models::require_tokenizer("", model.string(), "sample"); })
                .find("sample: no CLIP vocabulary; pass --tokenizer PATH"),
            std::string::npos);
  {
    TokenizerEnvScope env(ls::test::kClipVocab);
    EXPECT_EQ(find_tokenizer("", model.string()), ls::test::kClipVocab);
  }
  {
    TokenizerEnvScope env((dir / "missing.gz").c_str());
    EXPECT_NE(ls::test::error_of([&] { find_tokenizer("", model.string()); }).find("LORASTUDIO_TOKENIZER="),
              std::string::npos);
  }
  fs::copy_file(ls::test::kClipVocab, model.parent_path() / "bpe_simple_vocab_16e6.txt.gz");
  EXPECT_EQ(find_tokenizer("", model.string()), (model.parent_path() / "bpe_simple_vocab_16e6.txt.gz").string());
  write_tokenizer_pair(model.parent_path() / "tokenizer");  // a tokenizer/ folder beside wins
  EXPECT_EQ(find_tokenizer("", model.string()), (model.parent_path() / "tokenizer").string());
}

TEST(TokenizerLookup, SampleOnADiffusersFolderNeedsNoTokenizerFlag) {
  TokenizerEnvScope no_env(nullptr);
  ls::test::TempDir dir;
  const std::string single = (dir / "tiny.safetensors").string();
  auto r = ls::test::run_lorastudio("debug make-model --config " + std::string(ls::test::kSourceDir) +
                                    "/configs/sdxl_tiny.json --seed 3 --output " + single);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  write_tokenizer_pair(dir / "vocab");
  auto model = ls::models::load_sdxl_checkpoint(single, "", ls::models::Components::all(), torch::kCPU, torch::kFloat);
  const fs::path folder = dir / "tiny-diffusers";
  ls::models::save_diffusers_folder(folder, model, std::nullopt, (dir / "vocab").string());
  EXPECT_TRUE(fs::is_regular_file(folder / "tokenizer" / "vocab.json"));
  EXPECT_TRUE(fs::is_regular_file(folder / "tokenizer_2" / "merges.txt"));
  EXPECT_EQ(find_tokenizer("", folder.string()), (folder / "tokenizer").string());
  const std::string args = " --prompt 'a red cube' --steps 2 --width 64 --height 64 --seed 3 -q -o ";
  r = ls::test::run_lorastudio("sample --model " + folder.string() + args + (dir / "a.png").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = ls::test::run_lorastudio("sample --model " + single + " --tokenizer " + ls::test::kClipVocab + args +
                               (dir / "b.png").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // the same weights and the same vocabulary (read from vocab.json + merges.txt): the same pixels
  EXPECT_EQ(cv::norm(ls::io::read_image_rgb((dir / "a.png").string()), ls::io::read_image_rgb((dir / "b.png").string()),
                     cv::NORM_L1),
            0.0);
}

}  // namespace
