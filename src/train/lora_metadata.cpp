#include "train/lora_metadata.h"

#include <sstream>

#include "lora/kohya_format.h"
#include "train/lr_schedule.h"

namespace ls::train {

std::map<std::string, std::string> trained_lora_metadata(const TrainSession& s, int epoch, int64_t step) {
  const TrainConfig& c = s.config;
  const data::Reso reso = s.datasets.front().config.buckets.resolution;  // the one trained at
  auto m = lora::network_metadata(s.network_options, c.output_name, reso.height, reso.width);
  // A file is a function of the training alone (a resumed run writes the same bytes); the wall
  // clock goes to the log instead.
  m.erase("modelspec.date");
  auto num = [](double v) {
    std::ostringstream o;
    o.precision(17);
    o << v;
    return o.str();
  };
  m["ss_output_name"] = c.output_name;
  m["ss_learning_rate"] = num(c.learning_rate);
  m["ss_unet_lr"] = c.unet_lr ? num(*c.unet_lr) : "None";
  m["ss_text_encoder_lr"] = c.text_encoder_lr ? num(*c.text_encoder_lr) : "None";
  m["ss_optimizer"] = c.optimizer_type;
  m["ss_lr_scheduler"] = lr_schedule_name(s.scheduler->options().kind);
  m["ss_lr_warmup_steps"] = std::to_string(s.scheduler->options().warmup_steps);
  m["ss_max_train_steps"] = std::to_string(s.max_steps);
  m["ss_num_epochs"] = std::to_string(s.num_epochs);
  m["ss_epoch"] = std::to_string(epoch);
  m["ss_steps"] = std::to_string(step);
  m["ss_num_batches_per_epoch"] = std::to_string(s.batches_per_epoch);
  m["ss_num_train_images"] = std::to_string(s.train_images);
  m["ss_num_reg_images"] = std::to_string(s.reg_images);
  m["ss_gradient_accumulation_steps"] = std::to_string(c.gradient_accumulation_steps);
  m["ss_gradient_checkpointing"] = c.gradient_checkpointing ? "True" : "False";
  m["ss_mixed_precision"] = c.mixed_precision;
  m["ss_full_fp16"] = c.full_fp16 ? "True" : "False";
  m["ss_seed"] = std::to_string(s.seed);
  m["ss_noise_offset"] = c.noise_offset > 0 ? num(c.noise_offset) : "None";
  m["ss_min_snr_gamma"] = c.min_snr_gamma > 0 ? num(c.min_snr_gamma) : "None";
  m["ss_prior_loss_weight"] = num(c.prior_loss_weight);
  m["ss_max_grad_norm"] = num(c.max_grad_norm);
  m["ss_min_timestep"] = std::to_string(c.min_timestep);
  m["ss_max_timestep"] = std::to_string(c.max_timestep);
  m["ss_max_token_length"] = c.max_token_length ? std::to_string(c.max_token_length) : "None";
  m["ss_cache_latents"] = (c.cache_latents || c.cache_latents_to_disk) ? "True" : "False";
  return m;
}

}  // namespace ls::train
