// Dataset source flags; kohya's argparse names (--train_data_dir style) are accepted as aliases.
#include "cli/data_options.h"

namespace ls::cli {

void add_data_source_options(CLI::App& cmd, DataSourceOptions& o) {
  data::DatasetConfig& d = o.folder.defaults;
  data::SubsetConfig& s = o.folder.subset_defaults;
  cmd.add_option("path", o.path, "kohya dataset .toml, or a training folder of N_name subfolders (N = repeats)")
      ->required();
  cmd.add_option("--reg-dir,--reg_data_dir", o.folder.reg_dir, "Folder of N_name regularization subfolders");
  cmd.add_option("--resolution", o.resolution, "Training resolution for a folder source (max bucket area = R*R)")
      ->capture_default_str();
  cmd.add_option("--batch-size,--train_batch_size", d.batch_size, "Batch size for a folder source")->capture_default_str();
  cmd.add_option("--caption-extension,--caption_extension", s.caption_extension, "Caption file extension")
      ->capture_default_str();
  cmd.add_option("--min-bucket-reso,--min_bucket_reso", d.buckets.min_bucket_reso)->capture_default_str();
  cmd.add_option("--max-bucket-reso,--max_bucket_reso", d.buckets.max_bucket_reso)->capture_default_str();
  cmd.add_option("--bucket-reso-steps,--bucket_reso_steps", d.buckets.bucket_reso_steps)->capture_default_str();
  cmd.add_flag("--bucket-no-upscale,--bucket_no_upscale", d.buckets.bucket_no_upscale);
  cmd.add_flag("!--no-bucket", d.buckets.enable_bucket, "One bucket of resolution x resolution (kohya without --enable_bucket)");
  cmd.add_flag("--shuffle-caption,--shuffle_caption", s.caption.shuffle_caption);
  cmd.add_option("--keep-tokens,--keep_tokens", s.caption.keep_tokens);
  cmd.add_flag("--flip-aug,--flip_aug", s.flip_aug);
  cmd.add_flag("--random-crop,--random_crop", s.random_crop);
  cmd.add_option("--prior-loss-weight,--prior_loss_weight", d.prior_loss_weight)->capture_default_str();
}

data::DataConfig load_data_source(DataSourceOptions& o, data::Findings& findings) {
  o.folder.defaults.buckets.resolution = {o.resolution, o.resolution};
  return data::load_data_source(o.path, o.folder, findings);
}

}  // namespace ls::cli
