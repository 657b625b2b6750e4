// The request vocabulary (sample/request.h) reaches every reader by the same names: each field is
// set by its one name in `sample`, in `sheet` (flag and TOML key) and in a kohya sample-prompt
// file, and the old spellings are still taken. Run through the executable on the tiny model, so
// the flags checked are the commands' own.
#include <filesystem>

#include <nlohmann/json.hpp>

#include "a1111/infotext.h"
#include "core/atomic_file.h"
#include "io/png_text.h"
#include "sample/request.h"
#include "sheet/sheet_definition.h"
#include "support/support.h"
#include "train/sample_prompts.h"

namespace {

namespace fs = std::filesystem;
using ls::sample::request_fields;
using ls::test::run_lorastudio;

// A value for every field, none of them a default.
const std::map<std::string, std::string>& values() {
  static const std::map<std::string, std::string> v = {
      {"prompt", "a red cube"}, {"negative_prompt", "blurry"}, {"steps", "2"},     {"sampler", "Euler"},
      {"schedule_type", "Karras"}, {"cfg_scale", "5.5"},      {"seed", "11"},     {"width", "64"},
      {"height", "128"}};
  return v;
}

std::string shell_quote(const std::string& s) { return "\"" + s + "\""; }

// "--name value" for every field, each under `spell(field)`.
template <typename Spell>
std::string flags(Spell spell) {
  std::string out;
  for (const auto& f : request_fields()) out += " --" + spell(f) + " " + shell_quote(values().at(f.key.name));
  return out;
}

void expect_all_fields(const ls::sample::ImageSettings& s, const std::string& where) {
  ASSERT_EQ(values().size(), request_fields().size()) << "a new field needs a value here";
  for (const auto& f : request_fields())
    EXPECT_EQ(ls::sample::field_text(f, s), values().at(f.key.name)) << where << ": " << f.key.name;
}

ls::a1111::GenerationParams params_of(const std::string& png) {
  return ls::a1111::parse_infotext(ls::io::read_png_text_file(png).at("parameters"), png);
}

class RequestNames : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = path("tiny.safetensors");
    const std::string config = std::string(ls::test::kSourceDir) + "/configs/sdxl_tiny.json";
    auto r = run_lorastudio("debug make-model --config " + config + " --seed 5 --output " + model_);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }
  std::string common() const {
    return " --model " + model_ + " --tokenizer " + std::string(ls::test::kClipVocab) + " -q";
  }
  ls::test::TempDir dir_;
  std::string model_;
};

TEST_F(RequestNames, EveryFieldBySameNameInSampleSheetAndPromptFiles) {
  const auto name = [](const ls::sample::RequestField& f) { return f.key.name; };

  // sample
  auto r = run_lorastudio("sample" + common() + flags(name) + " -o " + path("s.png"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  expect_all_fields(params_of(path("s.png")), "sample");

  // sheet flags
  r = run_lorastudio("sheet" + common() + flags(name) + " -o " + path("sheet"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::vector<fs::path> cells;
  for (const auto& e : fs::directory_iterator(path("sheet/cells"))) cells.push_back(e.path());
  ASSERT_EQ(cells.size(), 1u);
  expect_all_fields(params_of(cells[0].string()), "sheet flags");

  // sheet TOML keys
  std::string toml;
  for (const auto& f : request_fields()) toml += f.key.name + " = " + nlohmann::json(values().at(f.key.name)).dump() + "\n";
  ls::core::write_file_atomic(path("sheet.toml"), toml);
  expect_all_fields(ls::sheet::load_sheet_toml(path("sheet.toml")).request, "sheet TOML");

  // kohya sample-prompt files: a .txt line and a .json list, with the same names
  std::string line = values().at("prompt");
  nlohmann::json entry = nlohmann::json::object();
  for (const auto& f : request_fields()) {
    if (f.key.name != "prompt") line += " --" + f.key.name + " " + values().at(f.key.name);
    entry[f.key.name] = values().at(f.key.name);
  }
  ls::core::write_file_atomic(path("prompts.txt"), line + "\n");
  ls::core::write_file_atomic(path("prompts.json"), nlohmann::json::array({entry}).dump());
  for (const char* file : {"prompts.txt", "prompts.json"}) {
    const auto requests = ls::train::read_sample_prompts(path(file), "euler", 0);
    ASSERT_EQ(requests.size(), 1u) << file;
    expect_all_fields(requests[0], file);
  }
}

TEST_F(RequestNames, OldSpellingsAreAliases) {
  // sample's old flags (--negative, --cfg, --schedule) work in both commands, as do the new ones.
  const auto spelled = [](const ls::sample::RequestField& f) {
    return f.key.aliases.empty() ? f.key.name : f.key.aliases.front();
  };
  auto r = run_lorastudio("sample" + common() + flags(spelled) + " -o " + path("old.png"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  expect_all_fields(params_of(path("old.png")), "sample, old flags");
  r = run_lorastudio("sheet" + common() + flags(spelled) + " -o " + path("old-sheet"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* command : {"sample", "sheet"}) {
    const std::string help = run_lorastudio(std::string(command) + " --help").out;
    for (const auto& f : request_fields()) {
      EXPECT_NE(help.find("--" + f.key.name), std::string::npos) << command << " --" << f.key.name;
      for (const auto& alias : f.key.aliases) EXPECT_NE(help.find("--" + alias), std::string::npos) << command << alias;
    }
  }
  // A given sampler brings its own schedule unless one is given too (--from-png overrides).
  r = run_lorastudio("sample" + common() + " --from-png " + path("old.png") + " --sampler \"DPM++ 2M\" -o " + path("re.png"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(params_of(path("re.png")).schedule_type, "");
  EXPECT_EQ(params_of(path("re.png")).cfg_scale, 5.5);
}

}  // namespace
