// Every lorastudio command registers itself on the CLI11 app; its callback runs the command.
#pragma once

#include <CLI/CLI.hpp>

namespace ls::cli {

/// `lorastudio debug ...` (cmd_debug.cpp), which calls the five below.
void register_debug(CLI::App& app);
void register_debug_tokenize(CLI::App& debug);    // cmd_debug_tokenize.cpp
void register_debug_forward(CLI::App& debug);     // cmd_debug_forward.cpp
void register_debug_make_model(CLI::App& debug);  // cmd_debug_make_model.cpp
void register_debug_train_step(CLI::App& debug);  // cmd_debug_train_step.cpp
void register_debug_tagger(CLI::App& debug);      // cmd_debug_tagger.cpp: tagger, tagger-preprocess
void register_debug_florence2(CLI::App& debug);   // cmd_debug_florence2.cpp: florence2
void register_debug_dist(CLI::App& debug);       // cmd_debug_dist.cpp: all-reduce

/// `lorastudio lora info` (cmd_lora.cpp), `plan` (cmd_plan.cpp), `merge` (cmd_merge.cpp).
void register_lora(CLI::App& app);
void register_plan(CLI::App& app);
void register_merge(CLI::App& app);

/// `lorastudio caption`, `caption retag`, `caption undo` (cmd_caption.cpp).
void register_caption(CLI::App& app);
/// `lorastudio captions`: the caption editor's server (cmd_captions.cpp).
void register_captions(CLI::App& app);

/// `lorastudio dataset check|cache|make-synthetic` (cmd_dataset.cpp).
void register_dataset(CLI::App& app);

/// `lorastudio train` (cmd_train.cpp).
void register_train(CLI::App& app);

/// `lorastudio sample` (cmd_sample.cpp), `sheet` (cmd_sheet.cpp), `review` (cmd_review.cpp).
void register_sample(CLI::App& app);
void register_sheet(CLI::App& app);
void register_review(CLI::App& app);

/// `lorastudio sweep` and `sweep status` (cmd_sweep.cpp).
void register_sweep(CLI::App& app);

/// `lorastudio version` and `--version` (cmd_version.cpp).
void register_version(CLI::App& app);

}  // namespace ls::cli
