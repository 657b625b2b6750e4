// `lorastudio caption DIR --model_dir TAGGER [kohya's tagger flags]`, `caption retag DIR` and
// `caption undo DIR`: the flags of kohya-ss/sd-scripts finetune/tag_images_by_wd14_tagger.py under
// its names (the selection ones from caption::selection_keys()), plus lorastudio's --existing,
// --dry-run, --save-probs and --prefix; `--captioner florence2` (or wd14,florence2 with --combine)
// adds Florence-2's sentences, with the flags of its reference generation.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "caption/caption_history.h"
#include "caption/caption_run.h"
#include "caption/florence2_processor.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/key_table.h"

namespace ls::cli {
namespace {

struct CaptionCommand {
  caption::CaptionOptions run;
  std::map<std::string, std::string> selection;  // flag name -> text given
  std::string existing = "skip";
  std::string retag_existing = "overwrite";
  caption::RetagOptions retag;
  std::map<std::string, std::string> retag_selection;
  std::string undo_dir, undo_run;
  std::string repo_id;
  bool onnx = false, force_download = false;
  std::string captioners = "wd14";
  bool strip_default_phrases = false;
  std::vector<std::string> strip_phrases;
};

// One flag per selection key, its text applied through the key table (the same parsing and
// range checks everywhere).
void add_selection_flags(CLI::App& cmd, std::map<std::string, std::string>& values) {
  for (const auto& key : caption::selection_keys().keys()) {
    if (!key.taken()) continue;
    std::string& slot = values[key.name];
    if (key.type == core::KeyType::kBool) cmd.add_flag("--" + key.name + "{true}", slot, key.help);
    else cmd.add_option("--" + key.name, slot, key.help);
  }
}

caption::SelectionOptions selection_from(const std::map<std::string, std::string>& values) {
  caption::SelectionOptions o;
  for (const auto& [name, text] : values) {
    if (text.empty()) continue;
    caption::selection_keys().apply(o, name, core::text_value(text), "--" + name, nullptr);
  }
  return o;
}

void print_summary(const caption::CaptionSummary& s, bool dry_run) {
  for (const auto& line : s.dry_run_lines) std::printf("would write %s\n", line.c_str());
  if (!s.frequencies.empty()) {
    std::printf("tag frequencies:\n");
    for (const auto& [tag, n] : s.frequencies) std::printf("  %s: %lld\n", tag.c_str(), static_cast<long long>(n));
  }
  for (const auto& f : s.failed) std::fprintf(stderr, "failed: %s\n", f.c_str());
  std::printf("%s %d, unchanged %d, skipped %d (existing captions kept), failed %d, of %d images in %.1f s",
              dry_run ? "would caption" : "captioned", s.captioned, s.unchanged, s.skipped,
              static_cast<int>(s.failed.size()), s.images, s.seconds);
  if (s.images_per_second > 0) std::printf(", %.2f img/s", s.images_per_second);
  std::printf("\n");
  if (!s.run.empty())
    std::printf("run %s (undo: lorastudio caption undo DIR --run %s)\n  log: %s\n", s.run.c_str(), s.run.c_str(),
                s.log_path.c_str());
}

void run_caption_command(CaptionCommand& c) {
  LS_CHECK(!c.run.dir.empty(), "caption: give the image folder: lorastudio caption DIR --model_dir TAGGER");
  LS_CHECK(c.repo_id.empty() && !c.force_download, "caption: lorastudio downloads nothing; download the tagger "
           "(config.json, model.safetensors, selected_tags.csv) and pass its folder with --model_dir");
  c.run.captioners = caption::split_tag_list(c.captioners, ",", true);
  // Florence-2 alone: --model_dir names its folder, as it names the tagger's when that runs alone.
  if (c.run.captioners == std::vector<std::string>{"florence2"} && c.run.florence2_dir.empty())
    std::swap(c.run.florence2_dir, c.run.model_dir);
  if (c.strip_default_phrases) c.run.strip_phrases = caption::florence2_default_strip_phrases();
  c.run.strip_phrases.insert(c.run.strip_phrases.end(), c.strip_phrases.begin(), c.strip_phrases.end());
  if (c.onnx) std::fprintf(stderr, "note: --onnx ignored: lorastudio runs the safetensors weights itself\n");
  c.run.existing = caption::parse_existing_mode(c.existing, "--existing");
  c.run.selection = selection_from(c.selection);
  auto summary = caption::run_caption(c.run);
  print_summary(summary, c.run.dry_run);
  if (!summary.failed.empty()) std::exit(1);  // the summary named them; the others are captioned
}

void run_retag_command(CaptionCommand& c) {
  c.retag.existing = caption::parse_existing_mode(c.retag_existing, "--existing");
  c.retag.selection = selection_from(c.retag_selection);
  auto summary = caption::run_retag(c.retag);
  print_summary(summary, c.retag.dry_run);
  if (!summary.failed.empty()) std::exit(1);  // the summary named them; the others are captioned
}

void run_undo_command(const CaptionCommand& c) {
  auto r = caption::undo_run(c.undo_dir, c.undo_run);
  for (const auto& conflict : r.conflicts) std::fprintf(stderr, "kept: %s\n", conflict.c_str());
  std::printf("undid run %s: restored %d, removed %d (created by the run), already as before %d, kept %d (edited since)\n",
              r.run.c_str(), r.restored, r.removed, r.unchanged, static_cast<int>(r.conflicts.size()));
  if (r.restored + r.removed > 0) std::printf("recorded as run %s\n", r.undo_run.c_str());
}

}  // namespace

void register_caption(CLI::App& app) {
  auto c = std::make_shared<CaptionCommand>();
  auto& o = c->run;
  CLI::App* cmd = app.add_subcommand(
      "caption", "Tag images with a WD14 v3 tagger and/or describe them with Florence-2, and write caption files "
      "(kohya's tagger flags); retag, undo");
  cmd->add_option("dir", o.dir, "Folder of images (png, jpg, webp, bmp)");
  cmd->add_option("--captioner", c->captioners, "wd14, florence2, or both (wd14,florence2: one file from both, see --combine)")
      ->capture_default_str();
  cmd->add_option("--model_dir", o.model_dir,
                  "Tagger folder: config.json, model.safetensors, selected_tags.csv (with --captioner florence2 "
                  "alone: the Florence-2 folder)");
  cmd->add_option("--florence2_model_dir", o.florence2_dir,
                  "Florence-2 folder (a snapshot of microsoft/Florence-2-base, -large, -base-ft or -large-ft): "
                  "config.json, pytorch_model.bin or model.safetensors, vocab.json, merges.txt");
  cmd->add_option("--task", o.florence2_task,
                  "Florence-2 task: <CAPTION>, <DETAILED_CAPTION>, <MORE_DETAILED_CAPTION>, <OCR>, <OCR_WITH_REGION>")
      ->capture_default_str();
  cmd->add_option("--max_new_tokens", o.max_new_tokens, "Florence-2: most tokens per caption")->capture_default_str();
  cmd->add_option("--num_beams", o.num_beams, "Florence-2: beams (1 = greedy; default: the model config's, 3)");
  cmd->add_flag("--strip_phrases", c->strip_default_phrases,
                "Florence-2: remove openings that describe the picture (\"The image shows\", \"In this image,\", ...)");
  cmd->add_option("--strip_phrase", c->strip_phrases, "Florence-2: another opening to remove (repeatable)");
  cmd->add_option("--combine", o.combine,
                  "Caption text from the captioners' outputs: fields {prefix}, {tags}, {caption} (default "
                  "\"{prefix}{tags}. {caption}\" with both, \"{prefix}{caption}\" with florence2)");
  add_selection_flags(*cmd, c->selection);
  cmd->add_option("--existing", c->existing,
                  "Images that already have a caption file: skip, overwrite, append or prepend (add missing tags)")
      ->capture_default_str();
  cmd->add_flag("--recursive", o.recursive, "Also the images in subfolders (hidden folders are left out)");
  cmd->add_option("--caption_extension", o.caption_extension, "Extension of the caption files")->capture_default_str();
  cmd->add_option("--batch_size", o.batch_size, "Images per model call")->capture_default_str();
  cmd->add_option("--max_data_loader_n_workers", o.loader_threads, "Threads decoding and resizing images")
      ->capture_default_str();
  cmd->add_flag("--dry-run", o.dry_run, "Print what would change; write nothing");
  cmd->add_flag("--save-probs", o.save_probs,
                "Keep every tag's probability (>= 0.05) in DIR/.lorastudio/tag_probs.jsonl for `caption retag`");
  cmd->add_flag("--frequency_tags", o.frequency_tags, "Print how many captions each tag went into");
  cmd->add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", o.dtype, "Compute precision: fp32, fp16 or bf16")->capture_default_str();
  cmd->add_option("--repo_id", c->repo_id, "kohya's download source: refused (lorastudio downloads nothing)");
  cmd->add_flag("--force_download", c->force_download, "kohya's: refused (lorastudio downloads nothing)");
  cmd->add_flag("--onnx", c->onnx, "kohya's: ignored (the safetensors weights run natively)");

  CLI::App* retag = cmd->add_subcommand("retag", "Captions again from the probabilities --save-probs kept, with new thresholds");
  retag->add_option("dir", c->retag.dir, "Folder captioned with --save-probs")->required();
  add_selection_flags(*retag, c->retag_selection);
  retag->add_option("--existing", c->retag_existing, "skip, overwrite, append or prepend")->capture_default_str();
  retag->add_option("--caption_extension", c->retag.caption_extension, "Extension of the caption files")
      ->capture_default_str();
  retag->add_flag("--dry-run", c->retag.dry_run, "Print what would change; write nothing");
  retag->add_flag("--frequency_tags", c->retag.frequency_tags, "Print how many captions each tag went into");
  retag->callback([c] { run_retag_command(*c); });

  CLI::App* undo = cmd->add_subcommand("undo", "Put back the caption files a run changed (those not edited since)");
  undo->add_option("dir", c->undo_dir, "Dataset folder")->required();
  undo->add_option("--run", c->undo_run, "Run id (default: the newest run that is not an undo)");
  undo->callback([c] { run_undo_command(*c); });

  cmd->callback([c, cmd] {
    if (cmd->got_subcommand("retag") || cmd->got_subcommand("undo")) return;
    run_caption_command(*c);
  });
}

}  // namespace ls::cli
