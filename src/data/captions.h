// Caption processing at training time (prefix/suffix, dropout, keep tokens, shuffle, tag dropout,
// secondary separator) and reading caption files. Matches kohya-ss/sd-scripts
// library/train_util.py BaseDataset.process_caption and DreamBoothDataset.read_caption, with the
// random draws in kohya's order (random.random() -> rng.uniform(), random.shuffle -> rng.shuffle).
#pragma once

#include <string>

#include "core/rng.h"

namespace ls::data {

/// kohya subset keys of the same names (config_util.BaseSubsetParams defaults).
struct CaptionOptions {
  bool shuffle_caption = false;
  std::string caption_separator = ",";
  int keep_tokens = 0;                // the first N tokens stay in front (only with shuffle/tag dropout)
  std::string keep_tokens_separator;  // "a, b ||| c, d ||| e": fixed | flexible | fixed suffix
  std::string secondary_separator;    // replaced by caption_separator at the end (tags with commas)
  double caption_dropout_rate = 0;    // whole caption -> "" with this probability
  int caption_dropout_every_n_epochs = 0;  // whole caption -> "" when epoch % n == 0
  double caption_tag_dropout_rate = 0;     // each flexible tag dropped with this probability
  std::string caption_prefix;
  std::string caption_suffix;
};

/// Throws ls::Error naming the option when a value cannot work (empty separator, rates outside
/// [0, 1], negative counts). process_caption calls it too.
void validate_caption_options(const CaptionOptions& options);

/// kohya BaseDataset.process_caption. `epoch` is kohya's current_epoch: 1 for the first training
/// epoch (train_network.py sets epoch + 1), so every_n_epochs = 2 drops epochs 2, 4, ...
/// Draws: one uniform for the dropout (only when the rate > 0); then, if the caption is kept and
/// shuffle or tag dropout is on, the shuffle of the flexible tags, then one uniform per flexible tag.
std::string process_caption(const std::string& caption, const CaptionOptions& options, int epoch,
                            core::Rng& rng);

/// The caption with caption_prefix / caption_suffix joined by a space (kohya's first step).
std::string with_prefix_suffix(const std::string& caption, const CaptionOptions& options);

/// True when process_caption is the same for every epoch and seed (text-encoder outputs may be
/// cached): no shuffle, no caption/tag dropout, no every-n-epochs dropout.
bool caption_is_static(const CaptionOptions& options);

struct CaptionFile {
  bool exists = false;
  bool empty = false;  // 0 bytes (kohya: assertion "caption file is empty") or a blank first line
  std::string text;    // the first line, stripped of Python whitespace (and of a UTF-8 BOM)
};
/// kohya read_caption for one file: the first line (\n, \r\n or \r end it), stripped. The whole
/// file must be UTF-8 (ls::Error naming the file and the byte offset otherwise). A missing file
/// gives exists = false; an unreadable one is an error.
CaptionFile read_caption_file(const std::string& path);

}  // namespace ls::data
