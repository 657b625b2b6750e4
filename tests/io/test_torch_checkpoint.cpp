// TorchCheckpoint on files torch 2.11 wrote (tests/fixtures/torch_pickle, make_fixtures.py): every
// record equals what an independent Python unpickler read from the same pickle (*.expected.json),
// every value equals torch.load's bit for bit (*.expected.safetensors), views keep their stride and
// offset, and malicious, whole-model, legacy, truncated and compressed files are refused in one
// line with nothing run (the payloads would create $LS_PICKLE_MARKER).
#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"
#include "support/support.h"

namespace {

namespace fs = std::filesystem;
using ls::io::TorchCheckpoint;
using ls::test::error_of;

std::string tc_fixture(const std::string& name) {
  return std::string(ls::test::kSourceDir) + "/tests/fixtures/torch_pickle/" + name;
}

// Equal dtype, shape and every bit: floats are compared through an integer view, so NaN payloads
// and -0 count.
::testing::AssertionResult tc_same_bits(const torch::Tensor& actual, const torch::Tensor& expected) {
  if (actual.scalar_type() != expected.scalar_type() || actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure() << actual.scalar_type() << actual.sizes() << " vs "
                                         << expected.scalar_type() << expected.sizes();
  if (!actual.is_floating_point()) return ls::test::bit_equal(actual, expected);
  const auto bits = actual.element_size() == 2 ? torch::kShort : actual.element_size() == 4 ? torch::kInt
                                                                                              : torch::kLong;
  return ls::test::bit_equal(actual.contiguous().view(bits), expected.contiguous().view(bits));
}

// Every record against the Python reading, every value against torch.load's.
void tc_check_fixture(const std::string& stem) {
  SCOPED_TRACE(stem);
  const TorchCheckpoint ckpt(tc_fixture(stem + ".bin"));
  const ls::io::SafetensorsReader expected(tc_fixture(stem + ".expected.safetensors"));
  std::ifstream json_in(tc_fixture(stem + ".expected.json"));
  const auto records = nlohmann::json::parse(json_in);
  ASSERT_EQ(ckpt.tensors().size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    const auto& t = ckpt.tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, r["name"].get<std::string>());
    EXPECT_EQ(ls::io::dtype_name(t.dtype), r["dtype"].get<std::string>());
    EXPECT_EQ(t.shape, r["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.stride, r["stride"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.storage_offset, r["storage_offset"].get<int64_t>());
    EXPECT_EQ(t.storage_key, r["storage_key"].get<std::string>());
    EXPECT_EQ(t.storage_numel, r["storage_numel"].get<int64_t>());
    EXPECT_EQ(t.location, r["location"].get<std::string>());
    EXPECT_EQ(t.requires_grad, r["requires_grad"].get<bool>());
    EXPECT_EQ(t.is_parameter, r["is_parameter"].get<bool>());
    EXPECT_EQ(ckpt.find(t.name), &t);
    const torch::Tensor loaded = ckpt.load(t.name);
    EXPECT_TRUE(loaded.is_contiguous());
    EXPECT_TRUE(loaded.device().is_cpu());
    EXPECT_TRUE(tc_same_bits(loaded, expected.load(t.name)));
  }
}

TEST(TorchCheckpoint, ReadsTheFp16StateDictExactly) {
  // 0-d, transposed (stride 1,3), expanded (stride 0,1), two views of one storage at offsets 2 and
  // 10, empty, inf/nan/-0/subnormal fp16, and one tensor of each other dtype.
  tc_check_fixture("state_dict_fp16");
  const TorchCheckpoint ckpt(tc_fixture("state_dict_fp16.bin"));
  const auto* a = ckpt.find("shared_a");
  const auto* b = ckpt.find("shared_b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->storage_key, b->storage_key);
  EXPECT_EQ(a->storage_begin, b->storage_begin);
  EXPECT_EQ(ckpt.load("transposed").sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(ckpt.find("missing"), nullptr);
}

TEST(TorchCheckpoint, ReadsParametersModuleStateDictsProtocol4AndCheckpoints) {
  tc_check_fixture("parameters");          // _rebuild_parameter (+ _with_state), one frozen
  tc_check_fixture("module_state_dict");   // OrderedDict with _metadata (BUILD), buffers
  tc_check_fixture("plain_dict_proto4");   // FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE
  tc_check_fixture("nested");              // {"state_dict": ..., "epoch": 3, ...}
}

TEST(TorchCheckpoint, Zip64FileReadsTheSameTensors) {
  const TorchCheckpoint plain(tc_fixture("state_dict_fp16.bin")), zip64(tc_fixture("zip64.bin"));
  ASSERT_EQ(plain.tensors().size(), zip64.tensors().size());
  for (const auto& t : plain.tensors()) EXPECT_TRUE(tc_same_bits(zip64.load(t.name), plain.load(t.name))) << t.name;
}

TEST(TorchCheckpoint, ConvertsFloatingTensorsAndKeepsTheOthers) {
  const TorchCheckpoint ckpt(tc_fixture("state_dict_fp16.bin"));
  // fp16 -> fp32 is exact, so the converted view equals the converted reference.
  const torch::Tensor t = ckpt.load("transposed", torch::kFloat, torch::kCPU);
  EXPECT_EQ(t.scalar_type(), torch::kFloat);
  EXPECT_TRUE(ls::test::bit_equal(t, ckpt.load("transposed").to(torch::kFloat)));
  EXPECT_EQ(ckpt.load("i64", torch::kHalf, torch::kCPU).scalar_type(), torch::kLong);
  EXPECT_EQ(ckpt.load("bool", torch::kHalf, torch::kCPU).scalar_type(), torch::kBool);
  EXPECT_EQ(ckpt.load("empty", torch::kFloat, torch::kCPU).sizes(), (std::vector<int64_t>{0, 4}));
  EXPECT_NE(error_of([&] { ckpt.load("nope"); }).find("no tensor named 'nope'"), std::string::npos);
}

TEST(TorchCheckpoint, RefusesMaliciousPicklesWithoutRunningThem) {
  const ls::test::TempDir dir;
  const fs::path marker = dir / "marker";
  ASSERT_EQ(::setenv("LS_PICKLE_MARKER", marker.c_str(), 1), 0);
  const fs::path default_marker = "/tmp/lorastudio-pickle-marker";
  fs::remove(default_marker);
  const std::pair<const char*, const char*> cases[] = {
      {"malicious_system.bin", "\"posix.system\""},
      {"malicious_proto4.bin", "\"posix.system\""},
      {"malicious_exec.bin", "\"__builtin__.exec\" (Python 3: builtins.exec)"},
      {"malicious_eval.bin", "\"__builtin__.eval\" (Python 3: builtins.eval)"},
      {"malicious_popen.bin", "\"commands.Popen\" (Python 3: subprocess.Popen)"}};
  for (const auto& [file, global] : cases) {
    const std::string path = tc_fixture(file);
    const std::string error = error_of([&] { TorchCheckpoint ckpt(path); });
    EXPECT_EQ(error, path + ": the pickle names " + global + ", which a state dict never uses; refusing to load "
                     "it (a pickle can run code): convert the file to safetensors with a tool you trust, or "
                     "get the model's model.safetensors");
  }
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_FALSE(fs::exists(default_marker));
  ::unsetenv("LS_PICKLE_MARKER");
}

TEST(TorchCheckpoint, RefusesWholeModelsLegacyTruncatedAndCompressedFiles) {
  const std::pair<const char*, const char*> cases[] = {
      {"module.bin", ": the pickle names \"torch.nn.modules.linear.Linear\": the file holds a whole model "
                     "object, not a state dict; refusing to load it"},
      {"legacy.bin", ": a legacy torch.save file (the pre-1.6 format, not a zip archive), which this reader "
                     "does not take; re-save it with torch.save"},
      {"truncated.bin", ": no zip end-of-central-directory record; the file is truncated"},
      {"compressed.bin", ": zip entry \"compressed/data.pkl\" is compressed (method 8)"}};
  for (const auto& [file, message] : cases) {
    const std::string path = tc_fixture(file);
    const std::string error = error_of([&] { TorchCheckpoint ckpt(path); });
    EXPECT_EQ(error.rfind(path + message, 0), 0u) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
  EXPECT_NE(error_of([&] { TorchCheckpoint(tc_fixture("legacy.bin")); }).find("convert it to safetensors"),
            std::string::npos);
  const ls::test::TempDir dir;
  std::ofstream(dir / "empty.bin").close();
  EXPECT_NE(error_of([&] { TorchCheckpoint(dir / "empty.bin"); }).find("empty.bin: the file is empty"),
            std::string::npos);
  EXPECT_NE(error_of([&] { TorchCheckpoint(dir / "absent.bin"); }).find("absent.bin: cannot open"),
            std::string::npos);
}

TEST(TorchCheckpoint, MovesOwnTheMapping) {
  TorchCheckpoint a(tc_fixture("parameters.bin"));
  const torch::Tensor before = a.load("linear.weight");
  TorchCheckpoint b(std::move(a));
  EXPECT_TRUE(tc_same_bits(b.load("linear.weight"), before));
  TorchCheckpoint c(tc_fixture("nested.bin"));
  c = std::move(b);
  EXPECT_TRUE(tc_same_bits(c.load("linear.weight"), before));
}

}  // namespace
