// Sheet definitions: TOML (paths relative to the file, globs, axes tables), flags, the cell plan
// (order, what each axis sets, strength acting on the lora axis' file) and the errors.
#include <filesystem>

#include "core/atomic_file.h"
#include "lora/lora_arg.h"
#include "sheet/sheet_definition.h"
#include "support/support.h"

namespace {

namespace fs = std::filesystem;
using ls::sheet::AxisKind;
using ls::sheet::AxisRole;

class SheetDefinitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.path() / "out");
    for (const char* f : {"out/dog-000002.safetensors", "out/dog-000001.safetensors", "out/dog.safetensors", "base.safetensors"}) {
      ls::core::write_file_atomic(dir_.path() / f, "x");
    }
  }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }
  ls::test::TempDir dir_;
};

TEST_F(SheetDefinitionTest, TomlWithRelativePathsGlobsAndAxes) {
  const std::string toml = path("sheet.toml");
  ls::core::write_file_atomic(toml,
                              "title = \"dog\"\n"
                              "output_dir = \"sheets/dog\"\n"
                              "model = \"base.safetensors\"\n"
                              "tokenizer = \"vocab.txt.gz\"\n"
                              "prompt = \"photo of sks dog\"\n"
                              "steps = 12\n"
                              "cfg_scale = 6.5\n"
                              "[x]\nkind = \"lora\"\nvalues = [\"out/dog-*.safetensors\"]\n"
                              "[y]\nkind = \"strength\"\nvalues = [0.5, 1]\n"
                              "[page]\nkind = \"prompt\"\nvalues = [\"a dog, red\", \"a dog, blue\"]\n");
  const auto spec = ls::sheet::load_sheet_toml(toml);
  EXPECT_EQ(spec.output_dir, path("sheets/dog"));
  EXPECT_EQ(spec.model.checkpoint, path("base.safetensors"));
  EXPECT_EQ(spec.request.steps, 12);
  EXPECT_EQ(spec.request.cfg_scale, 6.5);
  ASSERT_EQ(spec.axes.size(), 3u);
  EXPECT_EQ(spec.axes[0].values, (std::vector<std::string>{path("out/dog-000001.safetensors"), path("out/dog-000002.safetensors")}));
  EXPECT_EQ(spec.axes[0].labels, (std::vector<std::string>{"dog-000001", "dog-000002"}));
  EXPECT_EQ(spec.axes[1].labels, (std::vector<std::string>{"0.5", "1"}));
  EXPECT_EQ(spec.axes[2].role, AxisRole::kPage);

  const auto cells = ls::sheet::plan_cells(spec);
  ASSERT_EQ(cells.size(), 8u);
  // Pages outermost, then rows, then columns.
  EXPECT_EQ(cells[0].request.prompt, "a dog, red");
  EXPECT_EQ(cells[4].request.prompt, "a dog, blue");
  EXPECT_EQ(cells[1].request.loras.size(), 1u);
  EXPECT_EQ(cells[1].request.loras[0].path, path("out/dog-000002.safetensors"));
  EXPECT_EQ(cells[1].request.loras[0].strength, 0.5);
  EXPECT_EQ(cells[3].request.loras[0].strength, 1.0);
  EXPECT_EQ(cells[3].coords.at(AxisRole::kX), 1);
  EXPECT_EQ(cells[3].coords.at(AxisRole::kY), 1);
  EXPECT_EQ(cells[3].coords.at(AxisRole::kPage), 0);
  EXPECT_EQ(ls::sheet::epoch_of(cells[3].request.loras[0].path), 2);
  EXPECT_EQ(ls::sheet::epoch_of(path("out/dog.safetensors")), -1);
}

TEST_F(SheetDefinitionTest, FlagsStrengthWithoutLoraAxisActsOnEveryLora) {
  ls::sheet::SheetDefinition spec;
  ls::sheet::set_sheet_key(spec, "output_dir", path("s"), "--out");
  ls::sheet::set_sheet_key(spec, "model", path("base.safetensors"), "--model");
  ls::sheet::set_sheet_key(spec, "loras", path("out/dog.safetensors") + ":0.3|" + path("out/dog-000001.safetensors"), "--lora");
  ls::sheet::set_axis_flag(spec, AxisRole::kX, "strength=0.25,0.75");
  ls::sheet::set_axis_flag(spec, AxisRole::kY, "sampler=Euler a|DPM++ 2M Karras");
  ls::sheet::set_axis_flag(spec, AxisRole::kZ, "seed=1,2,3");
  const auto cells = ls::sheet::plan_cells(spec);
  ASSERT_EQ(cells.size(), 12u);
  for (const auto& l : cells[1].request.loras) EXPECT_EQ(l.strength, 0.75);
  EXPECT_EQ(cells[2].request.sampler, "DPM++ 2M Karras");
  EXPECT_EQ(cells[2].request.schedule_type, "");
  EXPECT_EQ(cells[11].request.seed, 3);
}

TEST_F(SheetDefinitionTest, VaeKeyAndVaeAxisChooseEachCellsVae) {
  fs::create_directories(dir_.path() / "vaes" / "fp16-fix");  // a diffusers VAE folder counts too
  ls::core::write_file_atomic(dir_.path() / "vaes" / "sdxl_vae.safetensors", "x");
  const std::string toml = path("vae.toml");
  ls::core::write_file_atomic(toml,
                              "output_dir = \"s\"\nmodel = \"base.safetensors\"\nvae = \"vaes/sdxl_vae.safetensors\"\n"
                              "[x]\nkind = \"seed\"\nvalues = [1, 2]\n");
  auto spec = ls::sheet::load_sheet_toml(toml);
  EXPECT_EQ(spec.model.vae, path("vaes/sdxl_vae.safetensors"));
  for (const auto& cell : ls::sheet::plan_cells(spec)) EXPECT_EQ(cell.vae, path("vaes/sdxl_vae.safetensors"));

  ls::sheet::set_axis_flag(spec, AxisRole::kY, "vae=" + path("vaes/sdxl_vae.safetensors") + "," + path("vaes/fp16-fix"));
  ASSERT_EQ(spec.axes.back().kind, AxisKind::kVae);
  EXPECT_EQ(spec.axes.back().labels, (std::vector<std::string>{"sdxl_vae", "fp16-fix"}));
  const auto cells = ls::sheet::plan_cells(spec);
  ASSERT_EQ(cells.size(), 4u);
  EXPECT_EQ(cells[0].vae, path("vaes/sdxl_vae.safetensors"));
  EXPECT_EQ(cells[3].vae, path("vaes/fp16-fix"));
  EXPECT_EQ(cells[3].checkpoint, path("base.safetensors"));
  EXPECT_NE(ls::test::error_of([&] { ls::sheet::set_axis_flag(spec, AxisRole::kZ, "vae=" + path("nope.safetensors")); })
                .find("nope.safetensors: not found (vae axis)"),
            std::string::npos);
}

TEST_F(SheetDefinitionTest, ErrorsNameThePlace) {
  const std::string toml = path("bad.toml");
  ls::core::write_file_atomic(toml, "output_dir = \"s\"\nstpes = 3\n");
  std::string e = ls::test::error_of([&] { ls::sheet::load_sheet_toml(toml); });
  EXPECT_NE(e.find(toml + ":2"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'steps'"), std::string::npos) << e;

  ls::sheet::SheetDefinition spec;
  e = ls::test::error_of([&] { ls::sheet::set_axis_flag(spec, AxisRole::kX, "seed=1,x"); });
  EXPECT_NE(e.find("'x' is not a whole number"), std::string::npos) << e;
  e = ls::test::error_of([&] { ls::sheet::set_axis_flag(spec, AxisRole::kX, "seed"); });
  EXPECT_NE(e.find("KIND=VALUES"), std::string::npos) << e;
  e = ls::test::error_of([&] { ls::sheet::set_axis_flag(spec, AxisRole::kX, "seed=1,1"); });
  EXPECT_NE(e.find("twice"), std::string::npos) << e;
  e = ls::test::error_of([&] { ls::sheet::set_axis_flag(spec, AxisRole::kX, "lora=" + path("out/cat.safetensors")); });
  EXPECT_NE(e.find("file not found"), std::string::npos) << e;
  ls::sheet::set_axis_flag(spec, AxisRole::kX, "seed=1,2");
  ls::sheet::set_axis_flag(spec, AxisRole::kY, "seed=3");
  ls::sheet::set_sheet_key(spec, "output_dir", path("s"), "--out");
  ls::sheet::set_sheet_key(spec, "model", path("base.safetensors"), "--model");
  e = ls::test::error_of([&] { ls::sheet::plan_cells(spec); });
  EXPECT_NE(e.find("two axes vary seed"), std::string::npos) << e;
}

// Inputs fuzz/fuzz_sheet_toml found (tests/fixtures/fuzz/fuzz_sheet_toml), each refused in one line.
std::string sheet_fuzz_error(const std::string& name) {
  const std::string file = std::string(ls::test::kSourceDir) + "/tests/fixtures/fuzz/fuzz_sheet_toml/" + name;
  return ls::test::error_of([&] { ls::sheet::validate(ls::sheet::load_sheet_toml(file)); });
}

TEST(SheetDefinitionFuzz, NonFiniteLoraStrengthIsRefused) {
  // loras = "a.safetensors:nan": std::stod reads nan and inf, which made NaN cells (and NaN merges).
  const std::string e = sheet_fuzz_error("crash-aa81f1cfd507205ab39277a1c273ccdc748d3204");
  EXPECT_NE(e.find("LoRA 'a.safetensors:nan': the strength after ':' must be a finite number"), std::string::npos) << e;
  EXPECT_NE(ls::test::error_of([] { ls::lora::parse_lora_arg("x.safetensors:-inf"); }).find("finite"), std::string::npos);
  EXPECT_EQ(ls::lora::parse_lora_arg("x.safetensors:0.75").second, 0.75);
  EXPECT_EQ(ls::lora::parse_lora_arg("C:/loras/x.safetensors").first, "C:/loras/x.safetensors");
}

TEST(SheetDefinitionFuzz, ValueTheSystemRefusesIsNotFound) {
  // A vae axis value longer than a file name may be: std::filesystem::exists threw ENAMETOOLONG.
  const std::string e = sheet_fuzz_error("crash-82bc0b508f97712fd9bbf2df5b5ada6cee22def3");
  EXPECT_NE(e.find("crash-82bc0b508f97712fd9bbf2df5b5ada6cee22def3:3: /vae.osRRRR"), std::string::npos) << e;
  EXPECT_NE(e.find(": not found (vae axis)"), std::string::npos) << e;
}

TEST(SheetDefinitionFuzz, SheetsOfMoreThanTheCellLimitAreRefused) {
  // Four axes of 60 values in 1 kB: 13 M cell plans ran out of memory before the first cell.
  const std::string e = sheet_fuzz_error("crash-fbf7609e6e1351f4bc87b2d46d19adcb88d6cc41");
  EXPECT_NE(e.find("sheet: axes of 60 x 60 x 60 x 60 values make more than 100000 cells"), std::string::npos) << e;
}

}  // namespace
