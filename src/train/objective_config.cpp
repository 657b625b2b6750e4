#include "train/objective_config.h"

#include "core/error.h"

namespace ls::train {

LossOptions loss_options(const TrainConfig& c) {
  LossOptions o;
  o.type = parse_loss_type(c.loss_type);
  o.huber_schedule = parse_huber_schedule(c.huber_schedule);
  o.huber_c = c.huber_c;
  o.huber_scale = c.huber_scale;
  o.min_snr_gamma = c.min_snr_gamma;
  o.v_prediction = c.v_parameterization;
  o.scale_v_pred_loss_like_noise_pred = c.scale_v_pred_loss_like_noise_pred;
  o.v_pred_like_loss = c.v_pred_like_loss;
  o.debiased_estimation = c.debiased_estimation_loss;
  return o;
}

StepDrawOptions draw_options(const TrainConfig& c, bool posterior) {
  StepDrawOptions o;
  o.posterior = posterior;
  o.noise_offset = c.noise_offset;
  o.noise_offset_random_strength = c.noise_offset_random_strength;
  o.adaptive_noise_scale = c.adaptive_noise_scale;
  o.multires_noise_iterations = c.multires_noise_iterations;
  o.multires_noise_discount = c.multires_noise_discount;
  o.ip_noise_gamma = c.ip_noise_gamma;
  o.ip_noise_gamma_random_strength = c.ip_noise_gamma_random_strength;
  o.min_timestep = c.min_timestep;
  o.max_timestep = c.max_timestep;
  return o;
}

models::NoiseSchedule training_schedule(const TrainConfig& c) {
  return models::NoiseSchedule::sdxl_trained(c.zero_terminal_snr);
}

void validate_objective(const TrainConfig& c, std::vector<std::string>* notes) {
  const LossType type = parse_loss_type(c.loss_type);  // its error lists the names
  parse_huber_schedule(c.huber_schedule);
  if (type == LossType::kHuber || type == LossType::kSmoothL1)
    LS_CHECK(c.huber_c > 0, "huber_c must be > 0 with loss_type ", c.loss_type, ", got ", c.huber_c);
  LS_CHECK(c.adaptive_noise_scale == 0 || c.noise_offset != 0,
           "adaptive_noise_scale requires noise_offset (kohya's rule); set noise_offset, e.g. 0.0357");
  LS_CHECK(!c.scale_v_pred_loss_like_noise_pred || c.v_parameterization,
           "scale_v_pred_loss_like_noise_pred can be enabled only with v_parameterization (kohya's rule)");
  LS_CHECK(c.v_pred_like_loss == 0 || !c.v_parameterization,
           "v_pred_like_loss cannot be enabled with v_parameterization (kohya's rule)");
  LS_CHECK(c.multires_noise_iterations >= 0, "multires_noise_iterations must be >= 0 (0: off), got ",
           c.multires_noise_iterations);
  LS_CHECK(c.ip_noise_gamma >= 0, "ip_noise_gamma must be >= 0 (0: off), got ", c.ip_noise_gamma);
  if (notes && c.zero_terminal_snr && !c.v_parameterization)
    notes->push_back("zero_terminal_snr without v_parameterization: an epsilon-prediction UNet cannot predict "
                     "the noise at t = 999 from pure noise; training will be unexpected (kohya warns the same)");
}

void check_loss_masks(const TrainConfig& c, const data::DataConfig& data, std::vector<std::string>& notes) {
  bool any = false;
  for (const data::DatasetConfig& d : data.datasets)
    for (const data::SubsetConfig& s : d.subsets) {
      LS_CHECK(s.conditioning_data_dir.empty() || c.masked_loss, data.source, ": subset ", s.image_dir,
               " has conditioning_data_dir (mask images), which needs masked_loss = true (kohya's rule); set it, or",
               " remove conditioning_data_dir");
      any = any || s.alpha_mask || !s.conditioning_data_dir.empty();
    }
  if (c.masked_loss && !any)
    notes.push_back("masked_loss: no subset has conditioning_data_dir or alpha_mask, so no loss is masked");
}

}  // namespace ls::train
