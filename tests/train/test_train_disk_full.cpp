// `lorastudio train` resumed from its step-2 state into a full or read-only output folder
// (tests/support/small_disk): the failing save of the final LoRA, or of the final state, is one
// error line naming the path, no temp file stays, every file already there keeps its bytes, and
// the same resume run again with room finishes with the uninterrupted run's LoRA, byte for byte.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "support/small_disk.h"
#include "support/support.h"
#include "support/tiny_training.h"

namespace train_disk_full_test {

namespace fs = std::filesystem;
using ls::test::DiskFault;

constexpr const char* kStep2State = "tiny-step00000002-state";

class TrainDiskFull : public ::testing::Test {
 protected:
  // The uninterrupted run: 4 steps, a LoRA and a state at step 2 and at the end.
  static void SetUpTestSuite() {
    tiny_ = new ls::test::TinyTraining();
    ref_ = new ls::test::TempDir();
    const auto r = ls::test::run_lorastudio_unfaulted(args(ref_->path()));
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  static void TearDownTestSuite() {
    delete ref_;
    delete tiny_;
  }

  static std::vector<std::string> args(const fs::path& out, bool resume = false) {
    std::vector<std::string> a{"train", "--pretrained_model_name_or_path", tiny_->checkpoint, "--dataset_config",
                               tiny_->dataset_toml, "--tokenizer", ls::test::kClipVocab, "--output_dir", out.string(),
                               "--output_name", "tiny", "--network_dim", "4", "--learning_rate", "1e-3", "--seed", "7",
                               "--max_train_steps", "4", "--save_every_n_steps", "2", "--save_state"};
    if (resume) a.insert(a.end(), {"--resume", (out / kStep2State).string()});
    return a;
  }
  static fs::path ref(const std::string& name) { return ref_->path() / name; }
  static uint64_t size_of(const std::string& name) { return fs::file_size(ref(name)); }
  static uint64_t page_up(uint64_t n) { return (n + 4095) / 4096 * 4096; }

  // What a run stopped after step 2 leaves: its LoRA, its state, the config and the log.
  static void seed_step2(const fs::path& out) {
    fs::create_directories(out);
    for (const char* f : {"tiny-step00000002.safetensors", "tiny-train.toml", "tiny-log.jsonl"})
      fs::copy_file(ref(f), out / f);
    fs::copy(ref(kStep2State), out / kStep2State, fs::copy_options::recursive);
  }

  // A resume from the step-2 state with room: the final LoRA and state are the uninterrupted run's.
  static void expect_resume_finishes_identically(const fs::path& out) {
    const auto r = ls::test::run_lorastudio_unfaulted(args(out, true));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_TRUE(ls::core::read_file(out / "tiny.safetensors") == ls::core::read_file(ref("tiny.safetensors")))
        << "the resumed run's final LoRA differs from the uninterrupted run's";
    EXPECT_TRUE(ls::core::read_file(out / "tiny-state/lora.safetensors") ==
                ls::core::read_file(ref("tiny-state/lora.safetensors")))
        << "the resumed run's final state differs from the uninterrupted run's";
  }

  // A resume whose final LoRA fits and whose final state does not, at `failing` (a file of the
  // state): the state's temp folder goes, the previous tiny-state/ stays as it was, and the LoRA
  // just written is already the uninterrupted run's.
  static void expect_state_save_fails(uint64_t free, const std::string& failing) {
    ls::test::TempDir root;
    const fs::path out = root / "out";
    seed_step2(out);
    fs::copy(ref(kStep2State), out / "tiny-state", fs::copy_options::recursive);  // an earlier run's state
    const auto before = ls::test::folder_files(out);

    const auto r = ls::test::run_lorastudio_with_fault(out, {DiskFault::kFull, free}, args(out, true));
    EXPECT_EQ(r.exit_code, 1) << r.out;
    const auto errors = ls::test::error_lines(r.out);
    ASSERT_EQ(errors.size(), 1u) << r.out;
    EXPECT_NE(errors[0].find("error: " + (out / "tiny-state").string() + ": cannot save the training state: "),
              std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find("/" + failing + ": cannot write ("), std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find("the previous state there is unchanged"), std::string::npos) << errors[0];
    EXPECT_EQ(ls::test::leftover_temp_files(out), std::vector<std::string>{});
    EXPECT_EQ(ls::test::folder_changes(before, ls::test::folder_files(out)),
              (std::vector<std::string>{"+tiny.safetensors", "~tiny-log.jsonl", "~tiny-train.toml"}));
    EXPECT_TRUE(ls::core::read_file(out / "tiny.safetensors") == ls::core::read_file(ref("tiny.safetensors")));

    expect_resume_finishes_identically(out);
  }

  static ls::test::TinyTraining* tiny_;
  static ls::test::TempDir* ref_;
};
ls::test::TinyTraining* TrainDiskFull::tiny_ = nullptr;
ls::test::TempDir* TrainDiskFull::ref_ = nullptr;

// Before the final save the resumed run rewrites the config (which records the resume) and the
// log (cut to step 2) and appends two steps: under a page each beyond their size. The final LoRA
// needs more. The reference and the resumes run with one thread, as the faulted run does.
TEST_F(TrainDiskFull, FinalLoraSaveFailsWholeThenResumeFinishesIdentically) {
  const uint64_t lora = size_of("tiny.safetensors");
  const uint64_t free = page_up(std::max(size_of("tiny-train.toml"), size_of("tiny-log.jsonl"))) + 4096;
  ASSERT_GT(lora, free + 4096) << "the tiny LoRA is too small for this test's arithmetic";
  ls::test::TempDir root;
  const fs::path out = root / "out";
  seed_step2(out);
  fs::copy_file(ref("tiny-step00000002.safetensors"), out / "tiny.safetensors");  // an earlier run's file
  const auto before = ls::test::folder_files(out);

  const auto r = ls::test::run_lorastudio_with_fault(out, {DiskFault::kFull, free}, args(out, true));
  const std::string how = ls::test::disk_fault_mechanism(DiskFault::kFull);
  std::printf("[train] disk full by %s, %llu bytes free; the LoRA is %llu bytes\n", how.c_str(),
              static_cast<unsigned long long>(free), static_cast<unsigned long long>(lora));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  const auto errors = ls::test::error_lines(r.out);
  ASSERT_EQ(errors.size(), 1u) << r.out;
  EXPECT_NE(errors[0].find((out / "tiny.safetensors").string() + ": cannot write ("), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find(ls::test::full_disk_error_text(how)), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("the previous file is unchanged"), std::string::npos) << errors[0];
  EXPECT_EQ(ls::test::leftover_temp_files(out), std::vector<std::string>{});
  // Only the config (now naming the resume) and the log (cut back to step 2, then steps 3 and 4)
  // moved on; the earlier tiny.safetensors is whole.
  EXPECT_EQ(ls::test::folder_changes(before, ls::test::folder_files(out)),
            (std::vector<std::string>{"~tiny-log.jsonl", "~tiny-train.toml"}));

  expect_resume_finishes_identically(out);
}

// Room for the final LoRA and the small files: the state's first file, its weights, fails on a
// tmpfs; under RLIMIT_FSIZE (a limit per file) its larger optimizer archive does.
TEST_F(TrainDiskFull, FinalStateSaveFailsWholeThenResumeFinishesIdentically) {
  const uint64_t free = page_up(size_of("tiny.safetensors")) +
                        page_up(std::max(size_of("tiny-train.toml"), size_of("tiny-log.jsonl"))) + 4096;
  const uint64_t weights = size_of("tiny-state/lora.safetensors"), optimizer = size_of("tiny-state/optimizer.pt");
  const bool tmpfs = ls::test::disk_fault_mechanism(DiskFault::kFull) == "tmpfs";
  ASSERT_GT(tmpfs ? weights : optimizer, tmpfs ? 4096 : free) << "the tiny state is too small for this test's arithmetic";
  expect_state_save_fails(free, tmpfs ? "lora.safetensors" : "optimizer.pt");
}

// On a tmpfs with room for the state's weights too, its optimizer archive (written through torch's
// zip writer) is what fails: one error line as well, not torch's exception out of a destructor.
TEST_F(TrainDiskFull, FinalStateOptimizerSaveFailsWholeThenResumeFinishesIdentically) {
  if (ls::test::disk_fault_mechanism(DiskFault::kFull) != "tmpfs")
    GTEST_SKIP() << "needs a tmpfs: a per-file size limit cannot pass the final LoRA and stop the larger archive here";
  const uint64_t free = page_up(size_of("tiny.safetensors")) + page_up(size_of("tiny-state/lora.safetensors")) +
                        page_up(std::max(size_of("tiny-train.toml"), size_of("tiny-log.jsonl"))) + 4096;
  ASSERT_GT(size_of("tiny-state/optimizer.pt"), 2 * 4096) << "the tiny state is too small for this test's arithmetic";
  expect_state_save_fails(free, "optimizer.pt");
}

// A read-only output folder: the first write fails, naming its path; nothing there changes.
TEST_F(TrainDiskFull, ReadOnlyOutputFolderFailsAtTheFirstWriteAndChangesNothing) {
  if (ls::test::disk_fault_mechanism(DiskFault::kReadOnly).empty())
    GTEST_SKIP() << "running as root without user namespaces: no way to make a folder read-only for this process";
  ls::test::TempDir root;
  const fs::path out = root / "out";
  seed_step2(out);
  const auto before = ls::test::folder_files(out);
  const auto r = ls::test::run_lorastudio_with_fault(out, {DiskFault::kReadOnly, 0}, args(out, true));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  const auto errors = ls::test::error_lines(r.out);
  ASSERT_EQ(errors.size(), 1u) << r.out;
  EXPECT_NE(errors[0].find("error: " + out.string() + "/tiny-"), std::string::npos) << errors[0];
  const bool said = errors[0].find("the filesystem is read-only") != std::string::npos ||
                    errors[0].find("check that the folder is writable") != std::string::npos;
  EXPECT_TRUE(said) << errors[0];
  EXPECT_EQ(ls::test::folder_changes(before, ls::test::folder_files(out)), std::vector<std::string>{});
  EXPECT_EQ(ls::test::leftover_temp_files(out), std::vector<std::string>{});
}

}  // namespace train_disk_full_test
